// How close() takes its grace, and what it waits for. Its options are read with the config's
// duration rule (ms or '1s', at most 24 h) and a wrong one rejects the promise close returns,
// closing nothing. The grace counts from close itself: a discovery source whose stop() is slow
// or never settles neither stretches it nor holds close forever — it is left behind, warned of.
import http from 'node:http';
import { afterEach, beforeEach, expect, test, vi } from 'vitest';
import { request } from 'undici';
import { createMesh, parseEndpointSpec, type DiscoveryContext, type Mesh, type MeshConfig } from '../../src/index.js';
import { closeAll, startBackends, type Backend } from '../support/backend.js';

let backends: Backend[];
let mesh: Mesh | null = null;
/** Responses the backend holds (never answered until the test is over). */
let held: http.ServerResponse[];
/** Resolves when the backend has received a request. */
let arrived: Promise<void>;

beforeEach(async () => {
  backends = await startBackends(1);
  held = [];
  let arrive!: () => void;
  arrived = new Promise((resolve) => (arrive = resolve));
  backends[0]!.handler = (_req, res) => {
    held.push(res);
    arrive();
  };
});

afterEach(async () => {
  vi.useRealTimers();
  await mesh?.dispatcher.destroy();
  mesh = null;
  for (const res of held) res.destroy();
  await closeAll(backends);
});

/** A request to `service` that hangs at the backend: what it ended with (a status, or the error's code). */
function hanging(m: Mesh, service = 'api'): { outcome: Promise<string>; settled: () => boolean } {
  let done = false;
  const outcome = request(`http://${service}/`, { dispatcher: m.dispatcher }).then(
    (r) => (r.body.dump(), `status ${r.statusCode}`),
    (e: { code?: string }) => String(e.code),
  );
  void outcome.finally(() => (done = true));
  return { outcome, settled: () => done };
}

/** A mesh whose service `api` is found by a custom discovery, whose stop() returns `stop()`. */
function meshWithStop(stop: () => Promise<void>, warnings: string[]): Mesh {
  return createMesh({
    logger: { debug: () => {}, warn: (m: string) => void warnings.push(m) },
    discoveries: {
      custom: (_o: unknown, ctx: DiscoveryContext) => {
        ctx.update([parseEndpointSpec(backends[0]!.url, 'custom')]);
        return { stop };
      },
    },
    services: { api: { discovery: { type: 'custom' } } },
  } as unknown as MeshConfig);
}

test('a wrong graceMs rejects the promise close returns (no throw) at close.graceMs, and nothing closes', async () => {
  mesh = createMesh({ services: { api: { endpoints: [backends[0]!.url] } } });
  backends[0]!.handler = null; // answer
  const wrong: [unknown, string][] = [
    [{ graceMs: -1 }, 'close.graceMs'],
    [{ graceMs: Number.NaN }, 'close.graceMs'],
    [{ graceMs: 'abc' }, 'close.graceMs'],
    // Past 24 h, a timer would fire at once (TimeoutOverflowWarning): refused, not cut short.
    [{ graceMs: Infinity }, 'close.graceMs'],
    [{ graceMs: 2 ** 31 }, 'close.graceMs'],
    [{ graceMs: '25h' }, 'close.graceMs'],
    [{ gracems: 5 }, 'close.gracems'],
    [5, 'close'],
  ];
  for (const [options, path] of wrong) {
    let closing: Promise<void> | undefined;
    expect(() => (closing = mesh!.close(options as never))).not.toThrow();
    await expect(closing).rejects.toMatchObject({ code: 'INVALID_CONFIG', path });
  }
  const res = await request('http://api/', { dispatcher: mesh.dispatcher });
  expect(res.statusCode).toBe(200);
  await res.body.dump();
});

test('close(null) and close(undefined) take the defaults', async () => {
  for (const options of [null, undefined]) {
    const m = createMesh({ services: { api: { endpoints: [backends[0]!.url] } } });
    await expect(m.close(options)).resolves.toBeUndefined();
    await expect(request('http://api/', { dispatcher: m.dispatcher })).rejects.toMatchObject({ code: 'MESH_CLOSED' });
  }
});

test("graceMs takes a duration string: '1s' lets a request in flight run 1000 ms, then cuts it", async () => {
  mesh = createMesh({ services: { api: { endpoints: [backends[0]!.url] } } });
  const req = hanging(mesh);
  await arrived;
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  const closing = mesh.close({ graceMs: '1s' });
  await vi.advanceTimersByTimeAsync(999);
  expect(req.settled()).toBe(false);
  await vi.advanceTimersByTimeAsync(1);
  vi.useRealTimers();
  expect(await req.outcome).toBe('MESH_CLOSED');
  await closing;
});

test("the grace counts from close, not from when discovery's stop() settled", async () => {
  const warnings: string[] = [];
  let stopped!: () => void;
  mesh = meshWithStop(() => new Promise<void>((resolve) => (stopped = resolve)), warnings);
  const req = hanging(mesh);
  await arrived;
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  const closing = mesh.close({ graceMs: 100 });
  await vi.advanceTimersByTimeAsync(60);
  stopped(); // the source took 60 ms to stop
  await vi.advanceTimersByTimeAsync(39);
  expect(req.settled()).toBe(false);
  await vi.advanceTimersByTimeAsync(1); // 100 ms after close: the grace is over
  vi.useRealTimers();
  expect(await req.outcome).toBe('MESH_CLOSED');
  await closing;
  expect(warnings).toEqual([]); // it did stop within the grace
});

test("a discovery stop() that never settles does not hold close: it is left behind, warned of", async () => {
  const warnings: string[] = [];
  mesh = meshWithStop(() => new Promise<void>(() => {}), warnings);
  const req = hanging(mesh);
  await arrived;
  await mesh.close({ graceMs: 0 });
  expect(await req.outcome).toBe('MESH_CLOSED');
  expect(warnings).toEqual(['meshlet:service:api: service api: discovery had not stopped when the grace of 0 ms ended; closing without waiting for it']);
});

test('a stop() left behind that rejects later is still logged', async () => {
  const warnings: string[] = [];
  let fail!: (e: Error) => void;
  const stopping = new Promise<void>((_resolve, reject) => (fail = reject));
  mesh = meshWithStop(() => stopping, warnings);
  await mesh.close({ graceMs: 0 });
  expect(warnings).toHaveLength(1);
  fail(new Error('registry unreachable'));
  await stopping.catch(() => {});
  await new Promise((resolve) => setImmediate(resolve));
  expect(warnings[1]).toBe('meshlet:service:api: service api: stopping discovery failed: registry unreachable');
});
