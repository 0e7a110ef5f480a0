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
