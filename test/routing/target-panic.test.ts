// Panic per priority level, as Envoy decides it (reference envoy-istio.md §1.5; Envoy's
// load_balancer_impl.cc): a level is in panic only when the normalized total health of the levels
// is below 100 % and its own available share is below the threshold; a healthy level that can
// take all the traffic keeps it, and a level's panic leaves the other levels alone.
//
// Endpoints are made unavailable by outlier detection on real answers (500s), with ejections far
// longer than the test, so what the picker sees depends only on the requests sent.
import { afterEach, describe, expect, test } from 'vitest';
import { request } from 'undici';
import { createMesh, type EndpointInput, type Mesh, type MeshEventMap, type ServiceConfig } from '../../src/index.js';
import { closeAll, startBackends, type Backend } from '../support/backend.js';
import { seeded, tolerance } from '../support/seeded.js';

let backends: Backend[] = [];
let mesh: Mesh | null = null;

afterEach(async () => {
  await mesh?.close({ graceMs: 500 });
  mesh = null;
  await closeAll(backends);
  backends = [];
});

/** Ejected on the first 5xx, for far longer than any test runs. */
const ejectOnFirst5xx: Partial<ServiceConfig> = {
  balancer: 'round-robin',
  retry: false,
  circuitBreaker: false,
  outlierDetection: { consecutive5xxErrors: 1, maxEjectionPercent: 100, baseEjectionTimeMs: 600_000, intervalMs: 600_000 },
};

async function get(m: Mesh): Promise<number> {
  const r = await request('http://s/', { dispatcher: m.dispatcher });
  await r.body.dump();
  return r.statusCode;
}

const ejected = (m: Mesh, bs: readonly Backend[]) => bs.every((b) => m.stats().services.s!.endpoints.find((e) => e.url === b.url)?.health === 'ejected');

/** Send requests until every one of `bs` is ejected (at most `max`); fails the test otherwise. */
async function ejectAll(m: Mesh, bs: readonly Backend[], max = 100): Promise<void> {
  for (let i = 0; i < max && !ejected(m, bs); i++) await get(m);
  expect(ejected(m, bs)).toBe(true);
}

/** How many of `n` requests each backend received. */
async function spread(m: Mesh, n: number): Promise<number[]> {
  const before = backends.map((b) => b.received.length);
  for (let i = 0; i < n; i++) await get(m);
  return backends.map((b, i) => b.received.length - before[i]!);
}

function record<K extends keyof MeshEventMap>(m: Mesh, name: K): MeshEventMap[K][] {
  const out: MeshEventMap[K][] = [];
  m.on(name, (e) => out.push(e));
  return out;
}

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);

describe('panic is decided per priority level (Envoy)', () => {
  test('a fully healthy priority 0 takes all the traffic while every endpoint of priority 1 is ejected: no panic', async () => {
    backends = await startBackends(5); // b0, b1 healthy at priority 0; b2–b4 answer 500, at priority 1
    for (const b of backends.slice(2)) b.fault = { kind: 'status', status: 500 };
    const at = (b: Backend, priority: number): EndpointInput => ({ url: b.url, priority });
    const low = backends.slice(2).map((b) => at(b, 1));
    mesh = createMesh({ random: seeded(1), services: { s: { ...ejectOnFirst5xx, endpoints: low } } });
    await ejectAll(mesh, backends.slice(2)); // alone, priority 1 gets the traffic that ejects it
    const panics = record(mesh, 'panic');
    mesh.setEndpoints('s', [at(backends[0]!, 0), at(backends[1]!, 0), ...low]);
    expect(ejected(mesh, backends.slice(2))).toBe(true); // unchanged endpoints keep their ejection

    // 2 of 5 available (40 %) service-wide, but priority 0's health is 100: it takes everything.
    const n = 200;
    const got = await spread(mesh, n);
    expect(got.slice(2)).toEqual([0, 0, 0]);
    expect(got[0]! + got[1]!).toBe(n);
    expect(panics).toEqual([{ service: 's', subset: undefined, active: false, available: 2, total: 5 }]);
    expect(ejected(mesh, backends.slice(2))).toBe(true);
  });

  test('a level in panic is balanced over all its endpoints, and leaves a level that is not in panic alone', async () => {
    // P0: b0 healthy, b1–b4 answer 500 (1 of 5 available: health ⌊1.4 × 20⌋ = 28, below 50 %: panic).
    // P1: b5 healthy, b6 answers 500 (1 of 2: health 70, not below 50 %). Total health 98 < 100.
    // Loads: ⌊28 × 100 / 98⌋ = 28 and ⌊70 × 100 / 98⌋ = 71, the remainder 1 to P0: 29 / 71.
    backends = await startBackends(7);
    const bad = [1, 2, 3, 4, 6].map((i) => backends[i]!);
    for (const b of bad) b.fault = { kind: 'status', status: 500 };
    const at = (i: number): EndpointInput => ({ url: backends[i]!.url, priority: i < 5 ? 0 : 1 });
    mesh = createMesh({ random: seeded(2), services: { s: { ...ejectOnFirst5xx, endpoints: [1, 2, 3, 4, 6].map(at) } } });
    await ejectAll(mesh, bad);
    mesh.setEndpoints('s', [0, 1, 2, 3, 4, 5, 6].map(at));

    const n = 3000;
    const got = await spread(mesh, n);
    expect(got[6]).toBe(0); // P1 is not in panic: its ejected endpoint gets nothing
    expect(Math.abs(got[5]! - n * 0.71)).toBeLessThanOrEqual(tolerance(n, 0.71));
    const p0 = sum(got.slice(0, 5));
    expect(Math.abs(p0 - n * 0.29)).toBeLessThanOrEqual(tolerance(n, 0.29));
    // P0 is in panic: its picks are spread over all five, the four ejected ones included.
    for (const c of got.slice(0, 5)) expect(Math.abs(c - p0 / 5)).toBeLessThanOrEqual(2);
  });

  test('every level in panic: each balanced over all its endpoints, the load by the levels sizes', async () => {
    backends = await startBackends(5); // P0: b0, b1; P1: b2–b4; all answer 500
    for (const b of backends) b.fault = { kind: 'status', status: 500 };
    const at = (i: number): EndpointInput => ({ url: backends[i]!.url, priority: i < 2 ? 0 : 1 });
    mesh = createMesh({ random: seeded(3), services: { s: { ...ejectOnFirst5xx, endpoints: [0, 1, 2, 3, 4].map(at) } } });
    await ejectAll(mesh, backends);
    const n = 2000;
    const got = await spread(mesh, n);
    expect(Math.abs(got[0]! + got[1]! - n * 0.4)).toBeLessThanOrEqual(tolerance(n, 0.4));
    for (const c of got) expect(c).toBeGreaterThan(0);
  });

  test('with the caller in us-east/a and all of us-east ejected, the healthy us-west endpoints take all the traffic', async () => {
    backends = await startBackends(6); // b0–b3 in us-east (zones a, a, b, b) answer 500; b4, b5 in us-west
    for (const b of backends.slice(0, 4)) b.fault = { kind: 'status', status: 500 };
    const where = [['us-east', 'a'], ['us-east', 'a'], ['us-east', 'b'], ['us-east', 'b'], ['us-west', 'c'], ['us-west', 'c']] as const;
    mesh = createMesh({
      random: seeded(4),
      locality: { region: 'us-east', zone: 'a' },
      services: {
        s: {
          ...ejectOnFirst5xx,
          endpoints: backends.map((b, i) => ({ url: b.url, region: where[i]![0], zone: where[i]![1] })),
          localityLb: { failover: [{ from: 'us-east', to: 'us-west' }] },
        },
      },
    });
    const panics = record(mesh, 'panic');
    await ejectAll(mesh, backends.slice(0, 4)); // the local zone first, then the rest of us-east
    // 2 of 6 available (33 %) service-wide; but the us-west level's health is 100.
    const n = 300;
    const got = await spread(mesh, n);
    expect(got.slice(0, 4)).toEqual([0, 0, 0, 0]);
    expect(got[4]! + got[5]!).toBe(n);
    expect(panics).toEqual([]);
  });
});
