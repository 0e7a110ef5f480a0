// Each target — the whole service and each subset — decides its own panic (an Envoy cluster per
// subset, as Istio makes one per DestinationRule subset), whatever the subsets are called, and the
// `panic` event names the target and fires only when that target's state changes.
//
// Endpoints are made unavailable by outlier detection on real answers (500s), with ejections far
// longer than the test, so what the pickers see depends only on the requests sent.
import { afterEach, describe, expect, test } from 'vitest';
import { request } from 'undici';
import { createMesh, type EndpointInput, type Mesh, type MeshEventMap } from '../../src/index.js';
import { closeAll, startBackends, type Backend } from '../support/backend.js';
import { seeded } from '../support/seeded.js';

let backends: Backend[] = [];
let mesh: Mesh | null = null;

afterEach(async () => {
  await mesh?.close({ graceMs: 500 });
  mesh = null;
  await closeAll(backends);
  backends = [];
});

/** Status of one request, to the subset the `x-v: bad` route names when `bad`; or the error's code. */
async function get(m: Mesh, bad: boolean): Promise<number | string> {
  try {
    const r = await request('http://s/', { dispatcher: m.dispatcher, headers: bad ? { 'x-v': 'bad' } : {} });
    await r.body.dump();
    return r.statusCode;
  } catch (e) {
    return (e as { code?: string }).code ?? 'error';
  }
}

function record<K extends keyof MeshEventMap>(m: Mesh, name: K): MeshEventMap[K][] {
  const out: MeshEventMap[K][] = [];
  m.on(name, (e) => out.push(e));
  return out;
}

/**
 * b0, b1 in the good subset; b2, b3 in the bad one, answering 500 and ejected on the first.
 * The whole service has 2 of 4 available (50 %, not below the threshold), the bad subset 0 of 2.
 */
async function setup(bad: string, good: string): Promise<{ m: Mesh; endpoints: EndpointInput[] }> {
  backends = await startBackends(4);
  for (const b of backends.slice(2)) b.fault = { kind: 'status', status: 500 };
  const endpoints = backends.map((b, i) => ({ url: b.url, labels: { version: i < 2 ? good : bad } }));
  const m = createMesh({
    random: seeded(1),
    services: {
      s: {
        endpoints,
        balancer: 'round-robin',
        retry: false,
        circuitBreaker: false,
        subsets: { [bad]: { labels: { version: bad } }, [good]: { labels: { version: good } } },
        routes: [{ match: [{ headers: { 'x-v': { exact: 'bad' } } }], subset: bad }],
        outlierDetection: { consecutive5xxErrors: 1, maxEjectionPercent: 100, baseEjectionTimeMs: 600_000, intervalMs: 600_000 },
      },
    },
  });
  mesh = m;
  return { m, endpoints };
}

const received = () => backends.map((b) => b.received.length);

describe('panic per target', () => {
  test.each([
    ['a', 'b'],
    ['b', 'a'],
  ])('a subset (%s) with nothing available is in panic and takes its requests, whatever the other (%s) is called', async (bad, good) => {
    const { m } = await setup(bad, good);
    expect([await get(m, true), await get(m, true)]).toEqual([500, 500]); // each ejects one of the subset's two
    const before = received();
    const statuses = [];
    for (let i = 0; i < 8; i++) statuses.push(await get(m, true));
    expect(statuses).toEqual(Array(8).fill(500)); // not CIRCUIT_OPEN: the subset balances over its ejected endpoints
    const after = received();
    expect(after[2]! - before[2]! + after[3]! - before[3]!).toBe(8);
    // The whole service (2 of 4 available) is not in panic: its requests never reach the ejected endpoints.
    for (let i = 0; i < 20; i++) expect(await get(m, false)).toBe(200);
    expect(received().slice(2)).toEqual(after.slice(2));
  });

  test("the panic event names the subset, and fires only when that target's state changes", async () => {
    const { m, endpoints } = await setup('v2', 'v1');
    const panics = record(m, 'panic');
    await get(m, true);
    await get(m, true);
    expect(panics).toEqual([{ service: 's', subset: 'v2', active: true, available: 0, total: 2 }]);

    // A new endpoint changes nothing about any target's panic: no event (no active: false, then true again).
    const [extra] = await startBackends(1, 'x');
    backends.push(extra!);
    m.setEndpoints('s', [...endpoints, { url: extra!.url, labels: { version: 'v1' } }]);
    for (let i = 0; i < 3; i++) await get(m, false);
    expect(panics).toHaveLength(1);

    // The subset's endpoints gone: it leaves panic (nothing left to balance over).
    m.setEndpoints('s', [...endpoints.slice(0, 2), { url: extra!.url, labels: { version: 'v1' } }]);
    expect(panics).toEqual([
      { service: 's', subset: 'v2', active: true, available: 0, total: 2 },
      { service: 's', subset: 'v2', active: false, available: 0, total: 0 },
    ]);
  });
});
