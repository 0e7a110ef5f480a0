// A listener that throws never breaks the request that emitted the event, and is warned of once
// per listener — an event such as `retry` may fire on every request, and the log must not carry
// one warning per request.
import { afterEach, beforeEach, expect, test } from 'vitest';
import { request } from 'undici';
import { createMesh, type Mesh } from '../../src/index.js';
import { closeAll, startBackends, type Backend } from '../support/backend.js';

let backends: Backend[];
let mesh: Mesh | null = null;

beforeEach(async () => {
  backends = await startBackends(2);
});

afterEach(async () => {
  await mesh?.close();
  mesh = null;
  await closeAll(backends);
});

test('a throwing listener is warned of once per listener, and the request goes on', async () => {
  for (const b of backends) b.fault = { kind: 'status', status: 503 };
  const warnings: string[] = [];
  mesh = createMesh({
    logger: { debug: () => {}, warn: (m: string) => void warnings.push(m) },
    random: () => 0, // back-off delays are 0
    services: { api: { endpoints: backends.map((b) => b.url), outlierDetection: false, circuitBreaker: false } },
  });
  let heard = 0;
  mesh.on('retry', () => {
    heard++;
    throw new Error('listener bug');
  });
  const statuses: number[] = [];
  for (let i = 0; i < 3; i++) {
    const res = await request('http://api/', { dispatcher: mesh.dispatcher });
    await res.body.dump();
    statuses.push(res.statusCode);
  }
  expect(statuses).toEqual([503, 503, 503]); // two retries each, then the last answer
  expect(heard).toBe(6);
  expect(warnings).toEqual(["meshlet:mesh: a listener of 'retry' threw (warned once per listener): listener bug"]);
  mesh.on('retry', () => {
    throw new Error('another bug');
  });
  await (await request('http://api/', { dispatcher: mesh.dispatcher })).body.dump();
  expect(warnings).toHaveLength(2);
  expect(warnings[1]).toMatch(/another bug$/);
});

test('on() refuses a listener that is no function and a name that is no event; requests go on', async () => {
  mesh = createMesh({ services: { api: { endpoints: [backends[0]!.url] } } });
  expect(() => mesh!.on('request', undefined as never)).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG', path: 'on.listener' }));
  expect(() => mesh!.on('request', {} as never)).toThrow(expect.objectContaining({ path: 'on.listener' }));
  expect(() => mesh!.on('requets' as never, () => {})).toThrow(expect.objectContaining({ path: 'on.name', message: expect.stringContaining('did you mean "request"?') }));
  expect(() => mesh!.on('toString' as never, () => {})).toThrow(expect.objectContaining({ path: 'on.name' }));
  // Nothing was subscribed: a request gets its whole body, as before the refused calls.
  const res = await request('http://api/', { dispatcher: mesh.dispatcher });
  expect(res.statusCode).toBe(200);
  expect(JSON.parse(await res.body.text())).toMatchObject({ backend: backends[0]!.name });
});

test('an async listener that rejects is warned of once, as one that throws: no unhandled rejection', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    let warned!: () => void;
    const firstWarning = new Promise<void>((resolve) => (warned = resolve));
    const warnings: string[] = [];
    const debug: string[] = [];
    mesh = createMesh({
      logger: { debug: (m: string) => void debug.push(m), warn: (m: string) => (warnings.push(m), warned()) },
      services: { api: { endpoints: [backends[0]!.url] } },
    });
    let heard = 0;
    mesh.on('request', async () => {
      heard++;
      throw new Error('async listener bug');
    });
    for (let i = 0; i < 2; i++) {
      const res = await request('http://api/', { dispatcher: mesh.dispatcher });
      expect(res.statusCode).toBe(200);
      await res.body.dump();
    }
    await firstWarning;
    // Had a rejection gone unhandled, Node would have reported it by the next turn of the loop.
    await new Promise((resolve) => setImmediate(resolve));
    expect(heard).toBe(2);
    expect(unhandled).toEqual([]);
    expect(warnings).toEqual(["meshlet:mesh: a listener of 'request' threw (warned once per listener): async listener bug"]);
    expect(debug.filter((m) => m.includes('async listener bug'))).toHaveLength(1); // the repeat
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});
