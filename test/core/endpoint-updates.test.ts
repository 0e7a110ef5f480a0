import { afterEach, beforeEach, expect, test, vi } from 'vitest';
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

test('endpoints added and removed with requests in flight: no request fails, added ones serve at once, removed ones drain', async () => {
  // Every backend holds its responses until the test releases them, so what is in flight when the
  // endpoints change is known exactly — no timing involved.
  const held: (() => void)[] = [];
  let arrived = 0;
  let onArrival: (() => void) | null = null;
  for (const b of backends) {
    b.handler = (req, res) => {
      held.push(() => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ backend: b.name })));
      arrived++;
      onArrival?.();
    };
  }
  const arrivals = (n: number): Promise<void> =>
    new Promise((resolve) => {
      onArrival = () => arrived >= n && resolve();
      onArrival();
    });
  const results: Promise<{ status: number; backend: string }>[] = [];
  for (let i = 0; i < 12; i++) results.push(get(`/before${i}`));
  await arrivals(12);
  expect(mesh.stats().services.orders!.endpoints.find((e) => e.url === backends[0]!.url)!.inFlight).toBe(4);

  mesh.setEndpoints('orders', [backends[1]!.url, backends[2]!.url, backends[3]!.url]);
  const draining = mesh.stats().services.orders!.endpoints.find((e) => e.url === backends[0]!.url)!;
  expect(draining).toMatchObject({ state: 'draining', inFlight: 4 });
  for (let i = 0; i < 12; i++) results.push(get(`/after${i}`));
  await arrivals(24);
  for (const release of held) release();
  const settled = await Promise.allSettled(results);
  expect(settled.filter((s) => s.status === 'rejected' || s.value.status !== 200)).toEqual([]);
  // The 4 requests in flight on b0 finished; none was sent to it after the update; b3 took its share.
  expect(backends[0]!.received).toHaveLength(4);
  expect(backends[3]!.received).toHaveLength(4);
  // The removed endpoint's pool closes once its in-flight requests are done, and it leaves the stats.
  await vi.waitFor(() =>
    expect(mesh.stats().services.orders!.endpoints.map((e) => e.url).sort()).toEqual([backends[1]!.url, backends[2]!.url, backends[3]!.url].sort()),
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
