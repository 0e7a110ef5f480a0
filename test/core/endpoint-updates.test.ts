import { afterEach, beforeEach, expect, test } from 'vitest';
import { request } from 'undici';
import { createMesh, type Mesh } from '../../src/index.js';
import { closeAll, startBackends, type Backend } from '../support/backend.js';

let backends: Backend[];
let mesh: Mesh;

beforeEach(async () => {
  backends = await startBackends(4);
  mesh = createMesh({
    services: { orders: { endpoints: backends.slice(0, 3).map((b) => b.url), balancer: 'round-robin' } },
  });
});

afterEach(async () => {
  await mesh.close();
  await closeAll(backends);
});

async function get(path: string): Promise<{ status: number; backend: string }> {
  const res = await request(`http://orders${path}`, { dispatcher: mesh.dispatcher });
  const body = (await res.body.json()) as { backend: string };
  return { status: res.statusCode, backend: body.backend };
}

test('endpoints added and removed under load: no request fails, added ones serve at once, removed ones drain', async () => {
  // Slow responses keep requests in flight on the endpoint we remove.
  for (const b of backends) b.fault = { kind: 'delay', ms: 30 };
  const results: Promise<{ status: number; backend: string }>[] = [];
  const stopAt = performance.now() + 600;
  let i = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() < stopAt) {
      const p = get(`/r${i++}`);
      results.push(p);
      await p;
    }
  };
  const workers = Array.from({ length: 16 }, worker);
  await new Promise((r) => setTimeout(r, 150));
  const inFlightOnB0 = mesh.stats().services.orders!.endpoints.find((e) => e.url === backends[0]!.url)!.inFlight;
  expect(inFlightOnB0).toBeGreaterThan(0);
  mesh.setEndpoints('orders', [backends[1]!.url, backends[2]!.url, backends[3]!.url]);
  const draining = mesh.stats().services.orders!.endpoints.find((e) => e.url === backends[0]!.url)!;
  expect(draining.state).toBe('draining');
  // Everything ever sent to b0: finished plus in flight at the moment of the update.
  const b0Sent = draining.requests + draining.inFlight;
  const b3Before = backends[3]!.received.length;
  await Promise.all(workers);
  const settled = await Promise.allSettled(results);
  const failed = settled.filter((s) => s.status === 'rejected' || s.value.status !== 200);
  expect(failed).toEqual([]);
  // Requests already sent to b0 finished; none were sent after the update.
  expect(backends[0]!.received.length).toBe(b0Sent);
  expect(backends[3]!.received.length).toBeGreaterThan(b3Before);
  // The removed endpoint's pool closed once its in-flight requests were done.
  await new Promise((r) => setTimeout(r, 50));
  expect(mesh.stats().services.orders!.endpoints.map((e) => e.url).sort()).toEqual(
    [backends[1]!.url, backends[2]!.url, backends[3]!.url].sort(),
  );
});

test('an unchanged endpoint keeps its state across updates; weight changes apply', async () => {
  for (let k = 0; k < 6; k++) await get('/warm');
  const before = mesh.stats().services.orders!.endpoints.find((e) => e.url === backends[1]!.url)!;
  expect(before.requests).toBe(2);
  mesh.setEndpoints('orders', [{ url: backends[1]!.url, weight: 3 }, backends[2]!.url]);
  const after = mesh.stats().services.orders!.endpoints.find((e) => e.url === backends[1]!.url)!;
  expect(after.requests).toBe(2);
  expect(after.weight).toBe(3);
  const counts: Record<string, number> = {};
  for (let k = 0; k < 8; k++) {
    const r = await get('/w');
    counts[r.backend] = (counts[r.backend] ?? 0) + 1;
  }
  expect(counts).toEqual({ b1: 6, b2: 2 });
});

test('an empty endpoint list fails requests with NO_HEALTHY_ENDPOINT, and a new list restores service', async () => {
  mesh.setEndpoints('orders', []);
  const err = await get('/none').catch((e: unknown) => e);
  expect(err).toMatchObject({ code: 'NO_HEALTHY_ENDPOINT', service: 'orders' });
  mesh.setEndpoints('orders', [backends[3]!.url]);
  expect((await get('/back')).backend).toBe('b3');
});

test('setEndpoints rejects bad input without changing anything', () => {
  expect(() => mesh.setEndpoints('orders', ['ftp://x'])).toThrowError(/setEndpoints\("orders"\)\[0\]\.url/);
  expect(() => mesh.setEndpoints('orders', [backends[0]!.url, backends[0]!.url])).toThrowError(/duplicate endpoint/);
  expect(() => mesh.setEndpoints('nope', [])).toThrowError(/no such service/);
  expect(mesh.stats().services.orders!.endpoints).toHaveLength(3);
});
