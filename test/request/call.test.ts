// What a layer may do with a call (request/call.ts), seen from the caller: an end listener that
// throws is reported and skipped, a local answer is a real HTTP status, and `fail` always ends the
// request with an Error — the request settles and close() goes on, whatever the layer did wrong.
// Real backends on loopback; the interceptors are the users' (README, "Your own layers").
import { afterEach, expect, test } from 'vitest';
import { request } from 'undici';
import { createMesh, LayerFailedError, type Interceptor, type Mesh, type MeshCall } from '../../src/index.js';
import { closeAll, startBackends, type Backend } from '../support/backend.js';

let backends: Backend[] = [];
let mesh: Mesh | null = null;
afterEach(async () => {
  await mesh?.close({ graceMs: 0 });
  mesh = null;
  await closeAll(backends);
  backends = [];
});

const warned: string[] = [];
const debugged: string[] = [];

function meshWith(handle: Interceptor['handle'], service: Record<string, unknown> = {}): Mesh {
  warned.length = debugged.length = 0;
  mesh = createMesh({
    logger: { warn: (m: string) => void warned.push(m), debug: (m: string) => void debugged.push(m) },
    services: { api: { endpoints: [backends[0]!.url], retry: false, ...service, interceptors: [{ name: 'mine', handle }] } },
  });
  return mesh;
}

/** The status and body, or the error the request failed with. */
const get = (m: Mesh) =>
  request('http://api/x', { dispatcher: m.dispatcher }).then(
    async (r) => ({ status: r.statusCode, body: await r.body.text() }),
    (e: unknown) => e,
  );

test('an onEnd listener that throws is warned of once; the request, the other listeners and close() still end', async () => {
  backends = await startBackends(1);
  const later: number[] = [];
  const m = meshWith(
    (call, next) => {
      call.onEnd(() => {
        throw new Error('listener boom');
      });
      call.onEnd((c) => void later.push(c.status));
      next(call);
    },
    // The concurrency slot is given back by a listener registered after the user's.
    { limits: { maxRequests: 1, maxPendingRequests: 0 } },
  );
  expect(await get(m)).toMatchObject({ status: 200 });
  expect(await get(m)).toMatchObject({ status: 200 });
  expect(later).toEqual([200, 200]);
  expect(m.stats().services.api!.inFlight).toBe(0);
  expect(warned).toHaveLength(1);
  expect(warned[0]).toMatch(/service api: a call\.onEnd listener threw.*listener boom/);
  expect(debugged.filter((d) => d.includes('listener boom'))).toHaveLength(1);
  await m.close(); // it waited forever for the request the throw had left live
  mesh = null;
});

test('an onEnd listener that throws after a local answer, or given once the request ended, is warned of too', async () => {
  backends = await startBackends(1);
  let late: unknown = 'not run';
  const m = meshWith((call) => {
    call.onEnd(() => {
      throw new Error('before');
    });
    call.respond(202, 'local');
    try {
      // Already ended: runs now, and its throw is the listener's, not the layer's.
      call.onEnd(() => {
        throw new Error('after');
      });
      late = null;
    } catch (err) {
      late = err;
    }
  });
  expect(await get(m)).toEqual({ status: 202, body: 'local' });
  expect(late).toBeNull();
  expect(warned).toHaveLength(1);
  expect(debugged.some((d) => d.includes('after'))).toBe(true);
  expect(backends[0]!.received).toHaveLength(0);
});

test.each([42, 99, 100, 199, 600, 1000, NaN, 200.5, -1, '200'].map((v) => [typeof v === 'string' ? `'${v}'` : String(v), v as number] as const))(
  'call.respond(%s) ends the request with LAYER_FAILED (a status is a whole number from 200 to 599)',
  async (_text, status) => {
    backends = await startBackends(1);
    const m = meshWith((call) => call.respond(status, 'local'));
    const err = await get(m);
    expect(err).toBeInstanceOf(LayerFailedError);
    expect(err).toMatchObject({ code: 'LAYER_FAILED', layer: 'call.respond', service: 'api', message: expect.stringContaining('from 200 to 599') });
    expect(backends[0]!.received).toHaveLength(0);
    expect(m.stats().services.api!.inFlight).toBe(0);
  },
);

test.each([200, 418, 599])('call.respond(%s) answers with it', async (status) => {
  backends = await startBackends(1);
  const m = meshWith((call) => call.respond(status, 'local'));
  expect(await get(m)).toEqual({ status, body: 'local' });
});

test.each([204, 304])('call.respond(%s) answers with no body and no content-length, whatever the text', async (status) => {
  backends = await startBackends(1);
  const m = meshWith((call) => call.respond(status, 'ignored'));
  const r = await request('http://api/x', { dispatcher: m.dispatcher });
  expect(r.statusCode).toBe(status);
  expect(r.headers['content-length']).toBeUndefined();
  expect(await r.body.text()).toBe('');
});

test('call.respond to a HEAD request gives the length of the text and no body bytes', async () => {
  backends = await startBackends(1);
  const m = meshWith((call) => call.respond(200, 'local'));
  const r = await request('http://api/x', { dispatcher: m.dispatcher, method: 'HEAD' });
  expect(r.statusCode).toBe(200);
  expect(r.headers['content-length']).toBe('5');
  expect(await r.body.text()).toBe('');
});

test.each([
  ['null', null, /given null, not an Error/],
  ['nothing', undefined, /given nothing, not an Error/],
  ['a string', 'nope', /given a string \("nope"\), not an Error/],
  ['an object', { code: 'X' }, /given an object, not an Error/],
])('call.fail(%s) ends the request with LAYER_FAILED that describes it, the value as cause', async (_what, value, message) => {
  backends = await startBackends(1);
  const m = meshWith((call: MeshCall) => (value === undefined ? (call.fail as () => void)() : call.fail(value as unknown as Error)));
  const err = await get(m);
  expect(err).toBeInstanceOf(LayerFailedError);
  expect(err).toMatchObject({ code: 'LAYER_FAILED', layer: 'call.fail', service: 'api', attempts: 1, message: expect.stringMatching(message) });
  expect((err as Error).cause).toBe(value);
  expect(backends[0]!.received).toHaveLength(0);
});

test('call.fail with an Error of the layer\'s own reaches the caller as given', async () => {
  backends = await startBackends(1);
  const mine = new RangeError('mine');
  const m = meshWith((call) => call.fail(mine));
  expect(await get(m)).toBe(mine);
});
