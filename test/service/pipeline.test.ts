// The request path as a pipeline: only configured layers are in a service's chain, in the order
// service/pipeline.ts lists; user interceptors share the built-ins' contract.
import { afterEach, expect, test } from 'vitest';
import { request } from 'undici';
import { createMesh, LayerFailedError, RateLimitedError, type Interceptor, type Mesh } from '../../src/index.js';
import { closeAll, startBackends, type Backend } from '../support/backend.js';

let backends: Backend[] = [];
let mesh: Mesh | null = null;
afterEach(async () => {
  await mesh?.close({ graceMs: 0 });
  mesh = null;
  await closeAll(backends);
  backends = [];
});

const status = (m: Mesh, path = '/x', headers: Record<string, string> = {}) =>
  request(`http://api${path}`, { dispatcher: m.dispatcher, headers }).then(
    async (r) => (await r.body.dump(), r.statusCode as number | string),
    (e: { code?: string }) => e.code ?? 'error',
  );

test('a service carries only the layers it configures, in pipeline order', async () => {
  backends = await startBackends(1);
  const url = backends[0]!.url;
  mesh = createMesh({
    services: {
      plain: { endpoints: [url], retry: false },
      defaults: { endpoints: [url] },
      full: {
        endpoints: [{ url, labels: { v: '1' } }],
        balancer: { type: 'ring-hash', hashOn: { header: 'x-user' } },
        timeoutMs: 1000,
        rateLimit: { requestsPerSecond: 100 },
        subsets: { v1: { labels: { v: '1' } } },
        routes: [{ match: [{ headers: { 'x-canary': { exact: '1' } } }], subset: 'v1', fault: { abort: { httpStatus: 418, percent: 0 } }, mirror: { percent: 0 } }],
      },
    },
  });
  const s = mesh.stats().services;
  expect(s.plain!.pipeline).toEqual(['inbound-context', 'concurrency', 'ready']);
  expect(s.defaults!.pipeline).toEqual(['inbound-context', 'concurrency', 'ready', 'retry']);
  expect(s.full!.pipeline).toEqual(['inbound-context', 'route', 'fault', 'mirror', 'hash', 'deadline', 'rate-limit', 'concurrency', 'ready', 'retry']);
});

test('interceptors: mesh-wide then per service, after routing and before the limits; they can end a request or watch it end', async () => {
  backends = await startBackends(1);
  const seen: string[] = [];
  const ended: (number | string)[] = [];
  const tenantGate: Interceptor = {
    name: 'tenant-gate',
    handle(call, next) {
      seen.push(`gate:${call.subset ?? 'all'}`);
      if (call.opts.path.startsWith('/admin')) return call.fail(new RateLimitedError(call.service, 'admin paths'));
      call.onEnd((c) => ended.push(c.error ? (c.error as unknown as { code: string }).code : c.status));
      next(call);
    },
  };
  mesh = createMesh({
    interceptors: [(ctx) => (ctx.service === 'api' ? tenantGate : null)],
    services: {
      api: {
        endpoints: [{ url: backends[0]!.url, labels: { v: '2' } }],
        subsets: { v2: { labels: { v: '2' } } },
        routes: [{ subset: 'v2' }],
        interceptors: [{ name: 'audit', handle: (call, next) => (seen.push(`audit:${call.attempt}`), next(call)) }],
      },
    },
  });
  expect(mesh.stats().services.api!.pipeline).toEqual(['inbound-context', 'route', 'tenant-gate', 'audit', 'concurrency', 'ready', 'retry']);
  expect(await status(mesh)).toBe(200);
  expect(await status(mesh, '/admin')).toBe('RATE_LIMITED');
  expect(seen).toEqual(['gate:v2', 'audit:0', 'gate:v2']);
  expect(ended).toEqual([200]);
  expect(backends[0]!.received).toHaveLength(1);
});

test('an interceptor that is not one fails at createMesh with its path', () => {
  expect(() => createMesh({ services: { api: { endpoints: ['http://127.0.0.1:1'], interceptors: [{ handle: 1 } as never] } } })).toThrow(
    /services\.api\.interceptors\[0\]: expected an interceptor/,
  );
});

test('a layer that throws ends its request with LAYER_FAILED instead of leaving it hanging, and the service goes on', async () => {
  backends = await startBackends(1);
  let calls = 0;
  mesh = createMesh({
    services: {
      api: {
        endpoints: [backends[0]!.url],
        interceptors: [
          {
            name: 'flaky',
            handle(call, next) {
              if (calls++ === 0) throw new TypeError('boom');
              next(call);
            },
          },
        ],
      },
    },
  });
  const err = await request('http://api/x', { dispatcher: mesh.dispatcher }).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(LayerFailedError);
  expect(err).toMatchObject({ code: 'LAYER_FAILED', layer: 'flaky', service: 'api', message: expect.stringContaining('boom') });
  expect((err as Error).cause).toBeInstanceOf(TypeError);
  // Nothing was sent for it, nothing counted against the endpoint, and the next request works.
  expect(backends[0]!.received).toHaveLength(0);
  expect(await status(mesh)).toBe(200);
  expect(mesh.stats().services.api!.endpoints[0]!.failures).toBe(0);
});
