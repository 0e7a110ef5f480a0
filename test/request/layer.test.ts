// The layer contract (request/layer.ts) for an `async handle`: what it returns is ignored, unless
// it is a promise that rejects — then the request ends with LAYER_FAILED, as for a throw, instead
// of hanging with an unhandled rejection. Real backend on loopback.
import { afterEach, expect, test } from 'vitest';
import { request } from 'undici';
import { createMesh, LayerFailedError, type Interceptor, type Mesh } from '../../src/index.js';
import { closeAll, startBackends, type Backend } from '../support/backend.js';

let backends: Backend[] = [];
let mesh: Mesh | null = null;
const rejections: unknown[] = [];
const onRejection = (reason: unknown): void => void rejections.push(reason);
afterEach(async () => {
  process.off('unhandledRejection', onRejection);
  rejections.length = 0;
  await mesh?.close({ graceMs: 0 });
  mesh = null;
  await closeAll(backends);
  backends = [];
});

function meshWith(...interceptors: Interceptor[]): Mesh {
  process.on('unhandledRejection', onRejection);
  mesh = createMesh({ logger: { warn: () => {}, debug: () => {} }, services: { api: { endpoints: [backends[0]!.url], retry: false, interceptors } } });
  return mesh;
}

const get = (m: Mesh) =>
  request('http://api/x', { dispatcher: m.dispatcher }).then(
    async (r) => ({ status: r.statusCode, body: await r.body.text() }),
    (e: unknown) => e,
  );

test('an async handle that rejects before passing the call on ends it with LAYER_FAILED naming the layer', async () => {
  backends = await startBackends(1);
  const m = meshWith({
    name: 'async-gate',
    async handle() {
      await null;
      throw new TypeError('async boom');
    },
  });
  const err = await get(m);
  expect(err).toBeInstanceOf(LayerFailedError);
  expect(err).toMatchObject({ code: 'LAYER_FAILED', layer: 'async-gate', service: 'api', message: expect.stringContaining('async boom') });
  expect((err as Error).cause).toBeInstanceOf(TypeError);
  expect(backends[0]!.received).toHaveLength(0);
  expect(rejections).toEqual([]);
  expect(m.stats().services.api!.endpoints[0]!.failures).toBe(0);
});

test('the innermost async layer that rejects is the one named', async () => {
  backends = await startBackends(1);
  const m = meshWith(
    { name: 'outer', handle: async (call, next) => next(call) },
    {
      name: 'inner',
      async handle() {
        throw new Error('inner boom');
      },
    },
  );
  expect(await get(m)).toMatchObject({ code: 'LAYER_FAILED', layer: 'inner' });
  expect(rejections).toEqual([]);
});

test('an async handle that resolves is a layer like any other; one that rejects once the request ended changes nothing', async () => {
  backends = await startBackends(1);
  const m = meshWith(
    {
      name: 'awaits',
      async handle(call, next) {
        await null;
        next(call);
      },
    },
    {
      name: 'late-throw',
      async handle(call, next) {
        const ended = new Promise((resolve) => call.onEnd(resolve));
        next(call);
        await ended;
        throw new Error('too late');
      },
    },
  );
  expect(await get(m)).toMatchObject({ status: 200 });
  expect(await get(m)).toMatchObject({ status: 200 });
  expect(backends[0]!.received).toHaveLength(2);
  expect(rejections).toEqual([]);
});
