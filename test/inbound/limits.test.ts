// Protection at the door (issue 14 §5): a concurrency limit (fixed, or adaptive — Vegas by
// default) answering 503 and a token bucket answering 429, both with Retry-After; their state in
// mesh.stats().inbound and the inbound-refused event; a meshlet client retrying elsewhere.
import http from 'node:http';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { request } from 'undici';
import { createMesh, InvalidConfigError, type InboundOptions, type Mesh, type MeshEventMap } from '../../src/index.js';
import { until } from '../support/holding.js';
import { httpRequest } from '../support/http-client.js';
import { Gate, serve, type Served } from '../support/inbound.js';

let t = 0;
let mesh: Mesh;
let gate: Gate;
const served: Served[] = [];
const refused: MeshEventMap['inbound-refused'][] = [];

beforeEach(() => {
  t = 0;
  gate = new Gate();
  refused.length = 0;
  mesh = createMesh({ now: () => t, services: {} });
  mesh.on('inbound-refused', (e) => refused.push(e));
});

afterEach(async () => {
  gate.open();
  await Promise.all(served.splice(0).map((s) => s.close()));
  await mesh.close();
});

/** Serve: `/hold` waits at the gate, `/slow503` takes 10 ms of the test clock and answers 503, anything else 200 `name`. */
async function start(options: InboundOptions, name = 'front'): Promise<Served> {
  const s = await serve(
    mesh.inbound(async (req: http.IncomingMessage, res: http.ServerResponse) => {
      if (req.url === '/hold') await gate.pass();
      t += 10;
      res.writeHead(req.url === '/slow503' ? 503 : 200).end(name);
    }, options),
  );
  served.push(s);
  return s;
}

test('over maxRequests the door answers 503 with Retry-After at once; a freed slot takes the next request', async () => {
  const s = await start({ limits: { maxRequests: 2 } });
  const held = [httpRequest(`${s.url}/hold`), httpRequest(`${s.url}/hold`)];
  await gate.arrived(2);
  const over = await httpRequest(`${s.url}/x`);
  expect(over.status).toBe(503);
  expect(over.headers['retry-after']).toBe('1');
  expect(over.body).toBe('inbound http: overloaded\n');
  expect(mesh.stats().inbound).toMatchObject({ inFlight: 2, overloaded: 1, entries: { http: { inFlight: 2, overloaded: 1, concurrencyLimit: 2 } } });
  expect(refused).toEqual([{ entry: 'http', status: 503, limit: 'concurrency' }]);
  gate.releaseOne();
  await held[0];
  await until(() => mesh.stats().inbound!.inFlight === 1);
  expect((await httpRequest(`${s.url}/x`)).status).toBe(200);
  gate.open();
  await Promise.all(held);
  await until(() => mesh.stats().inbound!.inFlight === 0);
  expect(mesh.stats().inbound).toMatchObject({ requests: 3, overloaded: 1 }); // a refused request is not served
});

test('the token bucket answers 429 with Retry-After once the burst is spent, and refills at requestsPerSecond', async () => {
  const s = await start({ rateLimit: { requestsPerSecond: 2, burst: 2 } });
  const statuses = async (n: number) => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push((await httpRequest(`${s.url}/x`)).status);
    return out;
  };
  expect(await statuses(3)).toEqual([200, 200, 429]);
  t += 500; // one token
  expect(await statuses(2)).toEqual([200, 429]);
  const r = await httpRequest(`${s.url}/x`);
  expect(r.headers['retry-after']).toBe('1');
  await until(() => mesh.stats().inbound!.requests === 3);
  expect(mesh.stats().inbound!.entries.http).toMatchObject({ rateLimited: 3, inFlight: 0, concurrencyLimit: null });
  expect(refused.map((e) => e.status)).toEqual([429, 429, 429]);
});

test('Retry-After of a slow bucket is the time one token takes, in whole seconds', async () => {
  const s = await start({ rateLimit: { requestsPerSecond: 0.1, burst: 1 } });
  await httpRequest(`${s.url}/x`);
  expect((await httpRequest(`${s.url}/x`)).headers['retry-after']).toBe('10');
});

test('a meshlet client retries a 503 from a full replica on another one, at once with Retry-After: 0', async () => {
  const a = await start({ name: 'a', limits: { maxRequests: 1, retryAfterSeconds: 0 } }, 'a');
  const b = await start({ name: 'b' }, 'b');
  const held = httpRequest(`${a.url}/hold`);
  await gate.arrived(1);
  const client = createMesh({ services: { api: { endpoints: [a.url, b.url], balancer: 'round-robin' } } });
  try {
    for (let i = 0; i < 2; i++) {
      const r = await request('http://api/x', { dispatcher: client.dispatcher });
      expect([r.statusCode, await r.body.text()]).toEqual([200, 'b']);
    }
    expect(mesh.stats().inbound!.entries.a!.overloaded).toBeGreaterThanOrEqual(1);
    expect(client.stats().services.api!.retries).toBe(mesh.stats().inbound!.entries.a!.overloaded);
  } finally {
    gate.open();
    await held;
    await client.close();
  }
});

test('adaptive: Vegas by default, starting at 20; an overload answer (503) from the handler lowers it', async () => {
  const s = await start({ limits: { adaptive: {} } });
  expect(mesh.stats().inbound!.entries.http!.concurrencyLimit).toBe(20);
  expect((await httpRequest(`${s.url}/x`)).status).toBe(200); // the first sample: the no-load latency
  expect((await httpRequest(`${s.url}/slow503`)).status).toBe(503);
  await until(() => mesh.stats().inbound!.requests === 2);
  expect(mesh.stats().inbound!.entries.http!.concurrencyLimit).toBe(19); // 20 − log10(20)
});

test('adaptive with gradient2 and a ceiling: the limit never exceeds maxRequests', async () => {
  await start({ limits: { maxRequests: 8, adaptive: { algorithm: 'gradient2', initialLimit: 20, minLimit: 1 } } });
  expect(mesh.stats().inbound!.entries.http!.concurrencyLimit).toBe(8);
});

test('entry points have their own names in stats; a repeated name gets a number', async () => {
  mesh.inbound(() => {});
  mesh.inbound(() => {});
  mesh.middleware({ name: 'api' });
  mesh.fastifyPlugin();
  expect(Object.keys(mesh.stats().inbound!.entries)).toEqual(['http', 'http-2', 'api', 'fastify']);
});

test.each([
  [{ limits: { maxRequests: 0 } }, 'inbound.limits.maxRequests'],
  [{ limits: { maxPendingRequests: 5 } }, 'inbound.limits.maxPendingRequests'],
  [{ limits: { adaptive: { algorithm: 'cubic' } } }, 'inbound.limits.adaptive.algorithm'],
  [{ limits: { adaptive: 5 } }, 'inbound.limits.adaptive'],
  [{ limits: { retryAfterSeconds: -1 } }, 'inbound.limits.retryAfterSeconds'],
  [{ rateLimit: {} }, 'inbound.rateLimit.requestsPerSecond'],
  [{ rateLimit: { requestsPerSecond: 5, mode: 'wait' } }, 'inbound.rateLimit.mode'],
  [{ propagate: ['end-user', 'bad header'] }, 'inbound.propagate[1]'],
  [{ propagate: 'end-user' }, 'inbound.propagate'],
  [{ loadReports: { intervalMs: 5 } }, 'inbound.loadReports.intervalMs'],
  [{ loadReports: { applicationUtilization: 0.5 } }, 'inbound.loadReports.applicationUtilization'],
  [{ loadReports: 'yes' }, 'inbound.loadReports'],
  [{ name: '' }, 'inbound.name'],
  [{ limit: {} }, 'inbound.limit'],
])('inbound(%j) is an InvalidConfigError at %s', (options, path) => {
  let err: unknown;
  try {
    mesh.inbound(() => {}, options as InboundOptions);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(InvalidConfigError);
  expect((err as InvalidConfigError).path).toBe(path);
});

test('the other entry points and the probes name their own paths', () => {
  expect(() => mesh.middleware({ limits: { maxRequests: -1 } })).toThrow(expect.objectContaining({ path: 'middleware.limits.maxRequests' }));
  expect(() => mesh.fastifyPlugin({ rateLimit: { requestsPerSecond: 0 } })).toThrow(expect.objectContaining({ path: 'fastifyPlugin.rateLimit.requestsPerSecond' }));
  expect(() => mesh.probes({ readinessPath: 'readyz' })).toThrow(expect.objectContaining({ path: 'probes.readinessPath' }));
  expect(() => mesh.probes({ ready: true } as never)).toThrow(expect.objectContaining({ path: 'probes.ready' }));
});
