import { describe, expect, test } from 'vitest';
import type { Dispatcher } from 'undici';
import { Endpoint } from '../../src/core/endpoint.js';
import { parseEndpointSpec } from '../../src/core/endpoint-spec.js';
import { NoHealthyEndpointError } from '../../src/core/errors.js';
import { roundRobin } from '../../src/balancers/round-robin.js';
import { ringHash } from '../../src/balancers/ring-hash.js';
import { parseLocalityLb, localityRank, processLocality } from '../../src/routing/locality.js';
import { Target } from '../../src/routing/target.js';
import { localityLoads, priorityLoads } from '../../src/routing/tiers.js';
import { seeded, tolerance } from '../support/seeded.js';

function ep(url: string, zone: string, region = 'us-east', priority = 0): Endpoint {
  const spec = parseEndpointSpec({ url, zone, region, priority }, 't');
  return new Endpoint(spec, {} as Dispatcher);
}

function epNoRegion(url: string, zone: string): Endpoint {
  return new Endpoint(parseEndpointSpec({ url, zone }, "t"), {} as Dispatcher);
}

function target(localityLb: unknown = undefined): Target {
  return new Target(null, { name: 'round-robin', def: roundRobin, options: {}, hashOn: undefined }, parseLocalityLb(localityLb, 'localityLb'));
}

const deps = (random: () => number) => ({
  service: 's',
  random,
  now: () => 0,
  noEndpoint: { type: 'fail' as const, error: new NoHealthyEndpointError('s', 'none') },
});
const ctx = { hash: undefined, attempt: 0, skip: () => false };

/** Share of `n` picks landing in each zone. */
function shares(target: Target, n: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const r = target.picker!.pick(ctx);
    if (r.type !== 'pick') throw new Error('no pick');
    const z = `${r.endpoint.region}/${r.endpoint.zone}`;
    out[z] = (out[z] ?? 0) + 1;
  }
  return out;
}

const PANIC = 50; // the default panic threshold

describe('tier loads (Envoy priority levels, overprovisioning 1.4, integer percents)', () => {
  test.each([
    [[[10, 10], [10, 10]], [100, 0]],
    [[[8, 10], [10, 10]], [100, 0]],
    [[[7, 10], [10, 10]], [98, 2]],
    [[[71, 100], [10, 10]], [99, 1]], // ⌊1.4 × 71⌋ = 99 (reference §1.5: "71 % ⇒ 99/1 split")
    [[[5, 10], [10, 10]], [70, 30]],
    [[[0, 10], [10, 10]], [0, 100]],
    [[[5, 10], [2, 10], [10, 10]], [70, 28, 2]],
    [[[1, 3], [1, 3]], [50, 50]], // health 46 + 46 = 92, normalized: 50 each
  ])('available/total %j → loads %j, no level in panic', (levels, expected) => {
    const { loads, panic } = priorityLoads(levels.map(([available, total]) => ({ available: available!, total: total! })), 0);
    expect(loads).toEqual(expected);
    expect(panic.every((p) => !p)).toBe(true);
  });

  test.each([
    // A healthy level that can take everything (total health 100): nobody panics, unhealthy levels get nothing.
    [[[2, 2], [0, 3]], [100, 0], [false, false]],
    [[[0, 2], [0, 2], [2, 2]], [0, 0, 100], [false, false, false]],
    // One level, 60 % available: not below the threshold.
    [[[6, 10]], [100], [false]],
    // Total health below 100: the level below the threshold panics, the other keeps its health-based load.
    [[[1, 10], [3, 5]], [15, 85], [true, false]], // health 14 + 84 = 98: ⌊14 × 100 / 98⌋ = 14, ⌊84 × 100 / 98⌋ = 85, remainder 1 to the first
    // Every level in panic: the load follows their sizes (Envoy's total panic), the remainder to the first.
    [[[1, 4], [0, 3]], [58, 42], [true, true]],
    [[[0, 2], [0, 3]], [40, 60], [true, true]],
  ])('available/total %j, panic threshold 50 → loads %j, panic %j', (levels, expectedLoads, expectedPanic) => {
    const { loads, panic } = priorityLoads(levels.map(([available, total]) => ({ available: available!, total: total! })), 50);
    expect(loads).toEqual(expectedLoads);
    expect(panic).toEqual(expectedPanic);
  });

  test('the threshold decides only while total health is below 100; with it 0 and nothing available, the first level gets it all', () => {
    expect(priorityLoads([{ available: 6, total: 10 }], 80).panic).toEqual([true]); // health 84 < 100, and 60 % < 80
    expect(priorityLoads([{ available: 8, total: 10 }], 90).panic).toEqual([false]); // 80 % < 90, but health 100: it can take everything
    expect(priorityLoads([{ available: 0, total: 2 }, { available: 0, total: 2 }], 0)).toEqual({ loads: [100, 0], panic: [false, false] });
  });

  test("distribute: a locality's share is its weight × min(1, 1.4 × available / total), normalized", () => {
    expect(localityLoads([{ weight: 80, available: 4, total: 4 }, { weight: 20, available: 4, total: 4 }])).toEqual([80, 20]);
    const half = localityLoads([{ weight: 80, available: 2, total: 4 }, { weight: 20, available: 4, total: 4 }]); // 80 × 0.7 = 56 against 20
    expect(half[0]).toBeCloseTo((56 * 100) / 76, 9);
    expect(localityLoads([{ weight: 80, available: 4, total: 4 }, { weight: 20, available: 0, total: 4 }])).toEqual([100, 0]);
  });
});

describe('locality-aware balancing', () => {
  const caller = { region: 'us-east', zone: 'a' };
  const endpoints = () => [
    ...[1, 2, 3, 4].map((i) => ep(`http://127.0.1.${i}:80`, 'a')),
    ...[1, 2, 3, 4].map((i) => ep(`http://127.0.2.${i}:80`, 'b')),
    ...[1, 2, 3, 4].map((i) => ep(`http://127.0.3.${i}:80`, 'c', 'us-west')),
  ];

  test('ranks: own zone 0, own region 1, elsewhere 2; failover order after that', () => {
    const lb = parseLocalityLb({ failover: [{ from: 'us-east', to: 'eu-west' }] }, 'x');
    expect(localityRank(lb, caller, 'us-east', 'a')).toBe(0);
    expect(localityRank(lb, caller, 'us-east', 'b')).toBe(1);
    expect(localityRank(lb, caller, 'eu-west', 'x')).toBe(2);
    expect(localityRank(lb, caller, 'ap-south', 'x')).toBe(3);
    expect(localityRank(lb, { region: undefined }, 'us-east', 'b')).toBe(0);
    expect(localityRank(parseLocalityLb({ enabled: false }, 'x'), caller, 'us-west', 'b')).toBe(0);
  });

  test('a caller that knows only its zone (no region) prefers it among endpoints that have no region either, as Envoy compares localities', () => {
    const lb = parseLocalityLb(undefined, 'x');
    const zoneOnly = { region: undefined, zone: 'a' };
    expect(localityRank(lb, zoneOnly, undefined, 'a')).toBe(0);
    expect(localityRank(lb, zoneOnly, undefined, 'b')).toBe(1);
    expect(localityRank(lb, zoneOnly, 'us-east', 'a')).toBe(2);
    // EndpointSlices give zones and no regions: traffic stays in the caller's zone.
    const slices = [1, 2].flatMap((i) => [
      epNoRegion(`http://127.0.4.${i}:80`, 'a'),
      epNoRegion(`http://127.0.5.${i}:80`, 'b'),
    ]);
    const t = target();
    t.rebuild(slices, zoneOnly, PANIC, deps(seeded(3)));
    expect(shares(t, 200)).toEqual({ 'undefined/a': 200 });
  });

  test('all traffic stays in the local zone while it is healthy', () => {
    const t = target();
    t.rebuild(endpoints(), caller, PANIC, deps(seeded(1)));
    expect(shares(t, 400)).toEqual({ 'us-east/a': 400 });
  });

  test('traffic moves away gradually as local endpoints become unavailable, and returns when they recover', () => {
    const all = endpoints();
    const t = target();
    const n = 4000;
    const measure = () => {
      t.rebuild(all, caller, PANIC, deps(seeded(2)));
      return shares(t, n);
    };
    all[0]!.available = false; // 3 of 4 local: health min(100, 1.4 × 75) = 100 → all local
    expect(measure()).toEqual({ 'us-east/a': n });
    all[1]!.available = false; // 2 of 4: health 70 → 70 % local, 30 % to zone b
    const half = measure();
    expect(Math.abs(half['us-east/a']! - n * 0.7)).toBeLessThanOrEqual(tolerance(n, 0.7));
    expect(Math.abs(half['us-east/b']! - n * 0.3)).toBeLessThanOrEqual(tolerance(n, 0.3));
    expect(half['us-west/c']).toBeUndefined();
    all[2]!.available = false;
    all[3]!.available = false; // zone a gone: zone b takes everything, us-west still nothing
    expect(measure()).toEqual({ 'us-east/b': n });
    for (const e of all.slice(0, 4)) e.available = true;
    expect(measure()).toEqual({ 'us-east/a': n });
  });

  test('distribute fixes locality shares, and a locality with nothing available gives its share away', () => {
    const lb = { distribute: [{ from: 'us-east/a', to: { 'us-east/a': 80, 'us-east/b': 20 } }] };
    const all = endpoints();
    const t = target(lb);
    const n = 4000;
    t.rebuild(all, caller, PANIC, deps(seeded(3)));
    const s = shares(t, n);
    expect(Math.abs(s['us-east/a']! - n * 0.8)).toBeLessThanOrEqual(tolerance(n, 0.8));
    expect(s['us-west/c']).toBeUndefined();
    for (const e of all.slice(4, 8)) e.available = false;
    t.rebuild(all, caller, PANIC, deps(seeded(3)));
    expect(shares(t, 400)).toEqual({ 'us-east/a': 400 });
  });

  test("a hashed request chooses its tier by hash mod 100 against the loads, as Envoy's hash balancers choose a priority", () => {
    const all = endpoints();
    const t = new Target(null, { name: 'ring-hash', def: ringHash, options: ringHash.parseOptions!({}, 'x'), hashOn: { header: 'x-user' } }, parseLocalityLb(undefined, 'localityLb'));
    all[0]!.available = false;
    all[1]!.available = false; // 70 % local, 30 % to zone b
    t.rebuild(all, caller, PANIC, deps(() => 0)); // a random draw would always say zone a
    const zoneOf = (hash: number, hashLow: number): string => {
      const r = t.picker!.pick({ hash, hashLow, attempt: 0, skip: () => false });
      if (r.type !== 'pick') throw new Error('no pick');
      return r.endpoint.zone!;
    };
    expect(zoneOf(0, 0)).toBe('a');
    expect(zoneOf(0, 69)).toBe('a');
    expect(zoneOf(0, 70)).toBe('b');
    expect(zoneOf(0, 99)).toBe('b');
    expect(zoneOf(0, 169)).toBe('a');
    expect(zoneOf(1, 0)).toBe('b'); // 2^32 mod 100 = 96: all 64 bits count
    expect(zoneOf(1, 4)).toBe('a'); // (2^32 + 4) mod 100 = 0
  });

  test('the process locality comes from config, else MESHLET_REGION / MESHLET_ZONE', () => {
    expect(processLocality({ region: 'r1' }, { MESHLET_REGION: 'r2', MESHLET_ZONE: 'z2' })).toEqual({ region: 'r1', zone: 'z2' });
    expect(processLocality(undefined, {})).toEqual({ region: undefined, zone: undefined });
  });
});
