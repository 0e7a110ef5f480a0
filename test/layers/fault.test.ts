// The fault layer with a delay and an abort on one route: as Envoy's fault filter (and so Istio's
// HTTPFaultInjection), the delay comes first and the abort is judged after it.
import { afterEach, beforeEach, expect, test, vi } from 'vitest';
import { request } from 'undici';
import { createMesh, type Mesh } from '../../src/index.js';
import { startBackend, type Backend } from '../support/backend.js';

let backend: Backend;
let mesh: Mesh | null = null;

beforeEach(async () => {
  backend = await startBackend('b');
});

afterEach(async () => {
  vi.useRealTimers();
  await mesh?.close();
  mesh = null;
  await backend.close();
});

function meshWith(fault: NonNullable<Parameters<typeof createMesh>[0]['services'][string]['routes']>[number]['fault']): Mesh {
  mesh = createMesh({ services: { api: { endpoints: [backend.url], retry: false, routes: [{ fault }] } } });
  return mesh;
}

test("the route's timeout starts after its fault delay (as Envoy's router timeout), and the time sent on says so", async () => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  mesh = createMesh({
    now: () => Date.now(), // the mesh's clock on the fake one
    services: { api: { endpoints: [backend.url], retry: false, routes: [{ timeoutMs: 150, fault: { delay: { fixedDelayMs: 100, percent: 100 } } }] } },
  });
  const done = request('http://api/', { dispatcher: mesh.dispatcher }).then((r) => r.body.text());
  await vi.advanceTimersByTimeAsync(100); // the delay ends: the request goes, with its whole 150 ms
  vi.useRealTimers();
  await done;
  expect(backend.received).toHaveLength(1);
  expect(backend.received[0]!.headers['x-envoy-expected-rq-timeout-ms']).toBe('150');
});

test('a request both delayed and aborted is aborted after the delay, never reaching the endpoint', async () => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  const m = meshWith({ delay: { fixedDelayMs: 7_000, percent: 100 }, abort: { httpStatus: 500, percent: 100 } });
  let status = 0;
  const done = request('http://api/', { dispatcher: m.dispatcher }).then(async (r) => {
    await r.body.text();
    status = r.statusCode;
  });
  await vi.advanceTimersByTimeAsync(6_999);
  expect(status).toBe(0); // an abort judged first would have answered at once
  await vi.advanceTimersByTimeAsync(1);
  vi.useRealTimers();
  await done;
  expect(status).toBe(500);
  expect(backend.received).toEqual([]);
});

test('a request not delayed is still aborted at once; one neither delayed nor aborted reaches the endpoint', async () => {
  const aborted = meshWith({ delay: { fixedDelayMs: 60_000, percent: 0 }, abort: { httpStatus: 503, percent: 100 } });
  const r = await request('http://api/', { dispatcher: aborted.dispatcher });
  expect(r.statusCode).toBe(503);
  expect(await r.body.text()).toBe('fault filter abort');
  await aborted.close();
  const neither = meshWith({ delay: { fixedDelayMs: 60_000, percent: 0 }, abort: { httpStatus: 503, percent: 0 } });
  const ok = await request('http://api/', { dispatcher: neither.dispatcher });
  expect(ok.statusCode).toBe(200);
  await ok.body.text();
  expect(backend.received.length).toBe(1);
});
