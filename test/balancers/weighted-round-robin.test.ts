import { afterEach, describe, expect, test } from 'vitest';
import { createMesh, type Mesh } from '../../src/index.js';
import { tallyBy } from '../support/tally.js';
import type { Endpoint } from '../../src/core/endpoint.js';
import { readLoadReport } from '../../src/load/orca.js';
import { weightedRoundRobin } from '../../src/balancers/weighted-round-robin.js';
import { build, counts, ctx, deps, endpoints } from '../support/endpoints.js';
import { seeded } from '../support/seeded.js';
import { encodeReport, textReport } from '../support/orca.js';
import { closeAll, startBackends, type Backend } from '../support/backend.js';

/** A manual clock. */
function clock(start = 0): { now: () => number; t: number } {
  const c = { t: start, now: () => c.t };
  return c;
}

/** `e` reports this load at `atMs` (through the real parser). */
function reports(e: Endpoint, atMs: number, r: Parameters<typeof textReport>[0]): void {
  const parsed = readLoadReport({ 'endpoint-load-metrics': textReport(r) });
  if (parsed?.type !== 'report') throw new Error('bad test report');
  e.load.report(parsed.report, atMs);
}

/** Counts per endpoint over `n` picks at the clock's current time. */
const shares = (p: ReturnType<typeof build>, eps: Endpoint[], n: number) => counts(p, eps, n);

describe('weighted-round-robin (gRPC A58, Envoy client_side_weighted_round_robin)', () => {
  test('shares converge to qps / utilization once the blackout is over', () => {
    const c = clock();
    const eps = endpoints([1, 1, 1]);
    const p = build(weightedRoundRobin, eps, deps(seeded(1), c.now));
    // Weights 100, 200, 300.
    reports(eps[0]!, 0, { cpuUtilization: 1, rpsFractional: 100 });
    reports(eps[1]!, 0, { cpuUtilization: 0.5, rpsFractional: 100 });
    reports(eps[2]!, 0, { cpuUtilization: 1, rpsFractional: 300 });
    c.t = 10_000;
    const n = shares(p, eps, 6000);
    // EDF is exact up to one pick per endpoint (the random first deadlines).
    expect(n[0]).toBeGreaterThanOrEqual(999);
    expect(n[0]).toBeLessThanOrEqual(1001);
    expect(n[1]).toBeGreaterThanOrEqual(1999);
    expect(n[1]).toBeLessThanOrEqual(2001);
  });

  test('the EDF schedule interleaves: a 3:1 pair never sends four in a row to one endpoint', () => {
    const c = clock(10_000);
    const eps = endpoints([1, 1]);
    const p = build(weightedRoundRobin, eps, deps(seeded(2), c.now), { blackoutPeriodMs: 0 });
    reports(eps[0]!, c.t, { cpuUtilization: 0.25, rpsFractional: 75 });
    reports(eps[1]!, c.t, { cpuUtilization: 0.25, rpsFractional: 25 });
    const seq = Array.from({ length: 40 }, () => ((p.pick(ctx()) as { endpoint: Endpoint }).endpoint === eps[0] ? 'a' : 'b')).join('');
    expect(seq).not.toMatch(/aaaa|bb/);
    expect(seq.split('b').length - 1).toBeGreaterThanOrEqual(9);
  });

  test('blackout: weights are used only after 10 s of reports; until then, plain round robin', () => {
    const c = clock();
    const eps = endpoints([1, 1]);
    const p = build(weightedRoundRobin, eps, deps(seeded(3), c.now));
    reports(eps[0]!, 0, { cpuUtilization: 0.1, rpsFractional: 100 }); // weight 1000
    reports(eps[1]!, 0, { cpuUtilization: 1, rpsFractional: 100 }); // weight 100
    c.t = 9_000;
    expect(shares(p, eps, 1000)).toEqual([500, 500]);
    c.t = 10_000; // a second later: weights recomputed, blackout over
    const n = shares(p, eps, 1100);
    expect(n[0]).toBeGreaterThanOrEqual(999);
    expect(n[1]).toBeLessThanOrEqual(101);
  });

  test('weights are recomputed once per weightUpdatePeriodMs, not on every pick', () => {
    const c = clock(20_000);
    const eps = endpoints([1, 1]);
    const p = build(weightedRoundRobin, eps, deps(seeded(4), c.now), { blackoutPeriodMs: 0 });
    reports(eps[0]!, c.t, { cpuUtilization: 0.5, rpsFractional: 100 });
    reports(eps[1]!, c.t, { cpuUtilization: 0.5, rpsFractional: 100 });
    expect(shares(p, eps, 100)).toEqual([50, 50]);
    reports(eps[0]!, c.t, { cpuUtilization: 0.05, rpsFractional: 100 }); // now 10× the other
    c.t += 999;
    expect(shares(p, eps, 100)).toEqual([50, 50]);
    c.t += 1;
    const n = shares(p, eps, 1100);
    expect(n[0]).toBeGreaterThanOrEqual(999);
  });

  test('expiry: a weight not refreshed for 3 min is dropped, and returning reports start a new blackout', () => {
    const c = clock();
    const eps = endpoints([1, 1]);
    const p = build(weightedRoundRobin, eps, deps(seeded(5), c.now));
    reports(eps[0]!, 0, { cpuUtilization: 0.1, rpsFractional: 100 });
    reports(eps[1]!, 0, { cpuUtilization: 1, rpsFractional: 100 });
    c.t = 180_000 - 1;
    expect(shares(p, eps, 1100)[1]).toBeLessThanOrEqual(101);
    c.t = 180_000 + 999; // both reports are 3 min old: no weights, round robin
    expect(shares(p, eps, 1000)).toEqual([500, 500]);
    reports(eps[0]!, c.t, { cpuUtilization: 0.1, rpsFractional: 100 });
    reports(eps[1]!, c.t, { cpuUtilization: 1, rpsFractional: 100 });
    c.t += 9_000; // fresh reports, but a new blackout
    expect(shares(p, eps, 1000)).toEqual([500, 500]);
    c.t += 1_000;
    expect(shares(p, eps, 1100)[1]).toBeLessThanOrEqual(101);
  });

  test('a report of an idle endpoint (qps 0) neither gives a weight nor refreshes one', () => {
    const c = clock();
    const eps = endpoints([1, 1]);
    const p = build(weightedRoundRobin, eps, deps(seeded(6), c.now), { blackoutPeriodMs: 0 });
    reports(eps[0]!, 0, { cpuUtilization: 0.1, rpsFractional: 100 });
    reports(eps[1]!, 0, { cpuUtilization: 1, rpsFractional: 100 });
    reports(eps[0]!, 170_000, { cpuUtilization: 0.1, rpsFractional: 0 });
    reports(eps[1]!, 170_000, { cpuUtilization: 0, rpsFractional: 100 });
    c.t = 179_000;
    expect(shares(p, eps, 1100)[1]).toBeLessThanOrEqual(101);
    c.t = 180_000;
    expect(shares(p, eps, 1000)).toEqual([500, 500]);
  });

  test('an endpoint without a weight gets the mean of the others', () => {
    const c = clock(0);
    const eps = endpoints([1, 1, 1]);
    const p = build(weightedRoundRobin, eps, deps(seeded(7), c.now), { blackoutPeriodMs: 0 });
    reports(eps[0]!, 0, { cpuUtilization: 1, rpsFractional: 100 });
    reports(eps[1]!, 0, { cpuUtilization: 1, rpsFractional: 300 });
    const n = shares(p, eps, 6000);
    // 100 : 300 : mean 200
    expect(n.map((x) => Math.round(x / 100))).toEqual([10, 30, 20]);
  });

  test('an extreme report (cpu_utilization:1e-320: qps / utilization is Infinity) stays finite and takes two thirds, not every pick: the other reporter keeps a hundredth of the mean, an unreported one the mean', () => {
    const c = clock(0);
    const eps = endpoints([1, 1, 1]);
    const p = build(weightedRoundRobin, eps, deps(seeded(12), c.now), { blackoutPeriodMs: 0 });
    const header = 'TEXT cpu_utilization:1e-320, rps_fractional:1';
    const parsed = readLoadReport({ 'endpoint-load-metrics': header });
    expect(parsed).toMatchObject({ type: 'report', report: { cpuUtilization: 1e-320, rpsFractional: 1 } }); // a valid report
    if (parsed?.type === 'report') eps[0]!.load.report(parsed.report, 0);
    reports(eps[1]!, 0, { cpuUtilization: 0.5, rpsFractional: 100 }); // weight 200
    // The mean of the two is half the (finite) largest: eps[0] is 2× the mean, eps[1] at the
    // floor of a hundredth of it, eps[2] (no report) the mean: 2 : 0.01 : 1 over 3010 picks.
    const n = shares(p, eps, 3010);
    expect(n[0]).toBeGreaterThanOrEqual(1999);
    expect(n[0]).toBeLessThanOrEqual(2001);
    expect(n[1]).toBeGreaterThanOrEqual(9);
    expect(n[1]).toBeLessThanOrEqual(11);
    expect(n[2]).toBeGreaterThanOrEqual(999);
    expect(n[2]).toBeLessThanOrEqual(1001);
  });

  test('weights are bounded to [mean / 100, mean × 10] (gRPC static_stride_scheduler), and stay finite when two reports overflow', () => {
    const c = clock(0);
    /** Picks of each of `weights` over `n` (EDF: exact up to one pick per endpoint). */
    const over = (weights: number[], n: number, seed: number): number[] => {
      const eps = endpoints(weights.map(() => 1));
      const p = build(weightedRoundRobin, eps, deps(seeded(seed), c.now), { blackoutPeriodMs: 0 });
      weights.forEach((w, i) => reports(eps[i]!, 0, { cpuUtilization: 1, rpsFractional: w }));
      return shares(p, eps, n);
    };
    // Capped from above: 100 among eleven 1s is 10.8× the mean (111 / 12); it counts as 10×.
    const mean = 111 / 12;
    const capped = over([100, ...Array<number>(11).fill(1)], 11_190, 13);
    expect(Math.abs(capped[0]! - (11_190 * 10) / (10 + 11 / mean))).toBeLessThanOrEqual(12); // 10 000, not 10 081 unbounded
    // Raised from below: 1 beside 1000 is 0.2 % of the mean (500.5); it counts as 1 %.
    const raised = over([1000, 1], 20_080, 14);
    expect(Math.abs(raised[1]! - (20_080 * 0.01) / (0.01 + 1000 / 500.5))).toBeLessThanOrEqual(2); // 100, not 20 unbounded
    // Two overflowing reports weigh the same (Number.MAX_VALUE), not Infinity / Infinity = NaN.
    const two = endpoints([1, 1]);
    const q = build(weightedRoundRobin, two, deps(seeded(15), c.now), { blackoutPeriodMs: 0 });
    reports(two[0]!, 0, { cpuUtilization: 1e-320, rpsFractional: 1 });
    reports(two[1]!, 0, { cpuUtilization: 2e-320, rpsFractional: 1 });
    expect(shares(q, two, 1000)).toEqual([500, 500]);
  });

  test('fewer than two endpoints with weights: plain round robin (discovery weights ignored too)', () => {
    const c = clock(0);
    const eps = endpoints([5, 1, 1]);
    const p = build(weightedRoundRobin, eps, deps(seeded(8), c.now), { blackoutPeriodMs: 0 });
    reports(eps[0]!, 0, { cpuUtilization: 0.01, rpsFractional: 1000 });
    expect(shares(p, eps, 300)).toEqual([100, 100, 100]);
  });

  test('application_utilization is used when > 0, else cpu_utilization; errors lower the weight by the penalty', () => {
    const c = clock(0);
    const eps = endpoints([1, 1]);
    // eps[0]: app 0.5 (cpu ignored) → 200; eps[1]: cpu 0.5 + 50/100 × penalty 1 → 100.
    reports(eps[0]!, 0, { cpuUtilization: 0.01, applicationUtilization: 0.5, rpsFractional: 100 });
    reports(eps[1]!, 0, { cpuUtilization: 0.5, rpsFractional: 100, eps: 50 });
    const p = build(weightedRoundRobin, eps, deps(seeded(9), c.now), { blackoutPeriodMs: 0 });
    expect(shares(p, eps, 3000).map((x) => Math.round(x / 100))).toEqual([20, 10]);
    const noPenalty = build(weightedRoundRobin, eps, deps(seeded(9), c.now), { blackoutPeriodMs: 0, errorUtilizationPenalty: 0 });
    expect(shares(noPenalty, eps, 3000).map((x) => Math.round(x / 100))).toEqual([15, 15]);
  });

  test('a skipped endpoint is never returned; all skipped gives NO_HEALTHY_ENDPOINT', () => {
    const c = clock(0);
    const eps = endpoints([1, 1, 1]);
    const p = build(weightedRoundRobin, eps, deps(seeded(10), c.now));
    for (let i = 0; i < 30; i++) expect((p.pick(ctx({ skip: [eps[1]!] })) as { endpoint: Endpoint }).endpoint).not.toBe(eps[1]);
    expect(p.pick(ctx({ skip: eps }))).toMatchObject({ type: 'fail', error: { code: 'NO_HEALTHY_ENDPOINT' } });
  });

  test('options: defaults, durations as strings, range errors name the field, toJSON round-trips', () => {
    const parse = (raw: Record<string, unknown>) => weightedRoundRobin.parseOptions!(raw, 'services.t.balancer');
    const defaults = parse({});
    expect(defaults).toEqual({ blackoutPeriodMs: 10_000, weightExpirationPeriodMs: 180_000, weightUpdatePeriodMs: 1_000, errorUtilizationPenalty: 1 });
    expect(parse({ blackoutPeriodMs: '5s', weightExpirationPeriodMs: '1m', weightUpdatePeriodMs: '250ms', errorUtilizationPenalty: 0.5 })).toEqual({
      blackoutPeriodMs: 5_000,
      weightExpirationPeriodMs: 60_000,
      weightUpdatePeriodMs: 250,
      errorUtilizationPenalty: 0.5,
    });
    expect(parse(weightedRoundRobin.toJSON!(defaults))).toEqual(defaults);
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ weightUpdatePeriodMs: 50 }, /services\.t\.balancer\.weightUpdatePeriodMs: expected a number ≥ 100/],
      [{ errorUtilizationPenalty: -1 }, /services\.t\.balancer\.errorUtilizationPenalty: expected a number ≥ 0/],
      [{ blackoutPeriodMs: 'soon' }, /services\.t\.balancer\.blackoutPeriodMs: expected a duration/],
      [{ weightExpirationPeriodMs: 0 }, /services\.t\.balancer\.weightExpirationPeriodMs/],
      [{ blackoutPeriod: 1 }, /services\.t\.balancer\.blackoutPeriod: unknown field — did you mean "blackoutPeriodMs"/],
    ];
    for (const [raw, message] of bad) expect(() => parse(raw), JSON.stringify(raw)).toThrowError(message);
  });
});

describe('weighted-round-robin through real backends that send load reports', () => {
  let backends: Backend[] = [];
  let mesh: Mesh | null = null;
  afterEach(async () => {
    await mesh?.close();
    mesh = null;
    await closeAll(backends);
  });

  /** Backends answering every request with `header: value`. */
  async function reporting(values: Record<string, string>[]): Promise<Backend[]> {
    backends = await startBackends(values.length);
    backends.forEach((b, i) => {
      b.handler = (req, res) => {
        req.resume();
        res.writeHead(200, { 'x-backend': b.name, ...values[i] });
        res.end('ok');
      };
    });
    return backends;
  }

  const send = (m: Mesh, n: number): Promise<Record<string, number>> => tallyBy(m.dispatcher, 'http://api/', n);

  test('reports in every form set the shares; a malformed one is ignored, counted and warned about once', async () => {
    const bin = Buffer.from(encodeReport({ cpuUtilization: 0.8, rpsFractional: 100 })).toString('base64');
    await reporting([
      { 'endpoint-load-metrics': 'TEXT cpu_utilization:0.2, rps_fractional:100, named_metrics.rif:7' }, // weight 500
      { 'endpoint-load-metrics': 'JSON {"cpu_utilization": 0.4, "rps_fractional": 100}' }, // 250
      { 'endpoint-load-metrics-bin': bin }, // 125
      { 'endpoint-load-metrics': 'TEXT cpu_utilization=0.1' }, // malformed: gets the mean, 291.67
    ]);
    const c = clock();
    const warnings: string[] = [];
    mesh = createMesh({
      services: { api: { endpoints: backends.map((b) => b.url), balancer: 'weighted-round-robin' } },
      now: c.now,
      random: seeded(11),
      logger: { warn: (m) => warnings.push(m), debug: () => {} },
    });
    expect(await send(mesh, 40)).toEqual({ b0: 10, b1: 10, b2: 10, b3: 10 }); // blackout: round robin
    c.t = 11_000;
    const by = await send(mesh, 1400);
    // 500 : 250 : 125 : 291.67 of 1400 → 600, 300, 150, 350
    expect(by.b0).toBeGreaterThanOrEqual(599);
    expect(by.b0).toBeLessThanOrEqual(601);
    expect(by.b1).toBeGreaterThanOrEqual(299);
    expect(by.b1).toBeLessThanOrEqual(301);
    expect(by.b2).toBeGreaterThanOrEqual(149);
    expect(by.b2).toBeLessThanOrEqual(151);
    const eps = mesh.stats().services.api!.endpoints;
    expect(eps[0]).toMatchObject({ reportedLoad: { utilization: 0.2, qps: 100, eps: 0, rif: 7, ageMs: 0 }, invalidLoadReports: 0 });
    expect(eps[2]!.reportedLoad).toMatchObject({ utilization: 0.8, rif: undefined });
    expect(eps[3]).toMatchObject({ reportedLoad: undefined, invalidLoadReports: 10 + by.b3! });
    expect(warnings.filter((w) => w.includes('invalid load report'))).toHaveLength(1);
    expect(warnings[0]).toContain(`endpoint ${backends[3]!.url} sent an invalid load report`);
  });

  test('a service whose balancers do not read reports never looks at the headers', async () => {
    await reporting([{ 'endpoint-load-metrics': 'TEXT cpu_utilization:0.2, rps_fractional:100' }, { 'endpoint-load-metrics': 'garbage' }]);
    mesh = createMesh({ services: { api: { endpoints: backends.map((b) => b.url), balancer: 'round-robin' } } });
    await send(mesh, 10);
    for (const e of mesh.stats().services.api!.endpoints) expect(e).toMatchObject({ reportedLoad: undefined, invalidLoadReports: 0 });
  });

  test('a subset with weighted-round-robin makes the service read reports', async () => {
    await reporting([{ 'endpoint-load-metrics': 'TEXT cpu_utilization:0.2, rps_fractional:100' }]);
    mesh = createMesh({
      services: { api: { endpoints: [{ url: backends[0]!.url, labels: { v: '1' } }], balancer: 'round-robin', subsets: { v1: { labels: { v: '1' }, balancer: 'weighted-round-robin' } } } },
    });
    await send(mesh, 1);
    expect(mesh.stats().services.api!.endpoints[0]!.reportedLoad).toMatchObject({ utilization: 0.2, qps: 100 });
  });
});
