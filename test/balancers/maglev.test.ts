// maglev against the tables Envoy's own tests print and assert
// (test/extensions/load_balancing_policies/maglev/maglev_lb_test.cc): the same hosts,
// `tcp://127.0.0.1:90` … `:95`, fill the same slots, and hash i lands on slot i mod size.
import { describe, expect, test } from 'vitest';
import { buildMaglevTable, maglev } from '../../src/balancers/maglev.js';
import type { Endpoint } from '../../src/core/endpoint.js';
import { build, ctx64, deps, endpointsAt } from '../support/endpoints.js';
import { seeded } from '../support/seeded.js';

const ports = (from: number, to: number): string[] => Array.from({ length: to - from + 1 }, (_, i) => `http://127.0.0.1:${from + i}`);

/** The host index picked for hashes 0 … 3 × size − 1 (Envoy checks three laps of the table). */
function assignments(eps: Endpoint[], size: number, skip: Endpoint[] = []): number[] {
  const p = build(maglev, eps, deps(seeded(1)), { tableSize: size });
  return Array.from({ length: 3 * size }, (_, i) => {
    const r = p.pick(ctx64(BigInt(i), { skip }));
    if (r.type !== 'pick') throw new Error('no pick');
    return eps.indexOf(r.endpoint);
  });
}

const laps = (table: number[]): number[] => [...table, ...table, ...table];

describe("maglev builds Envoy's table", () => {
  test('Basic: six hosts in a 7-slot table', () => {
    expect(assignments(endpointsAt(ports(90, 95)), 7)).toEqual(laps([2, 4, 0, 1, 5, 0, 3]));
  });

  test("BasicWithMetadataHashKey: an endpoint's hashKey is what is hashed (Envoy's envoy.lb hash_key)", () => {
    const eps = endpointsAt(ports(90, 95).map((url, i) => ({ url, hashKey: String(90 + i) })));
    expect(assignments(eps, 7)).toEqual(laps([2, 5, 0, 3, 4, 1, 0]));
  });

  test('BasicStability: the table does not depend on the order endpoints are listed in', () => {
    const eps = endpointsAt(ports(90, 95));
    const shuffled = [eps[3]!, eps[0]!, eps[5]!, eps[1]!, eps[4]!, eps[2]!];
    expect(assignments(shuffled, 7).map((i) => eps.indexOf(shuffled[i]!))).toEqual(laps([2, 4, 0, 1, 5, 0, 3]));
  });

  test('BasicWithRetryHostPredicate: a skipped host sends hash h to slot (h XOR (2^64 − k)) mod size, k = 1, 2, …', () => {
    const eps = endpointsAt(ports(90, 95));
    const pick = (skip: Endpoint[]): number => {
      const r = build(maglev, eps, deps(seeded(1)), { tableSize: 7 }).pick(ctx64(10n, { skip }));
      return r.type === 'pick' ? eps.indexOf(r.endpoint) : -1;
    };
    expect(pick([])).toBe(1);
    expect(pick([eps[1]!])).toBe(0);
    expect(pick([eps[1]!, eps[0]!])).toBe(5);
  });

  test('Weighted: weights 1:2 in a 17-slot table', () => {
    const eps = endpointsAt(ports(90, 91).map((url, i) => ({ url, weight: i + 1 })));
    const table = [1, 0, 0, 1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1, 0, 1];
    expect(assignments(eps, 17)).toEqual(laps(table));
    expect(table.filter((x) => x === 0)).toHaveLength(6);
  });

  test('locality-weighted tables as host weights: 1:1 (LocalityWeightedSameLocalityWeights) and 4:1 (…DifferentLocalityWeights)', () => {
    const even = endpointsAt(ports(90, 91));
    expect(assignments(even, 17)).toEqual(laps([1, 0, 0, 1, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 1, 0, 1]));
    const lopsided = endpointsAt(ports(90, 91).map((url, i) => ({ url, weight: i === 0 ? 4 : 1 })));
    expect(assignments(lopsided, 17)).toEqual(laps([1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0]));
  });

  test('LocalityWeightedLopsided: 1,023 light hosts get one slot each, the heavy one the other 64,514', () => {
    const keys = Array.from({ length: 1024 }, (_, i) => `127.0.0.1:${i}`);
    // Keys are filled in byte order, which is how Envoy sorts them too.
    const table = buildMaglevTable([...keys].sort(), [...keys].sort().map((k) => (k === '127.0.0.1:0' ? 127 * 1023 : 1)), 65_537);
    const counts = new Map<number, number>();
    for (const x of table) counts.set(x, (counts.get(x) ?? 0) + 1);
    expect(counts.size).toBe(1024);
    expect(counts.get(0)).toBe(65_537 - 1023);
    expect([...counts.entries()].filter(([k, c]) => k !== 0 && c !== 1)).toEqual([]);
  });

  test('SingleHost and WeightedSingleHost: one endpoint takes every slot', () => {
    for (const weight of [1, 7]) expect(new Set(assignments(endpointsAt([{ url: 'http://127.0.0.1:90', weight }]), 17))).toEqual(new Set([0]));
  });

  test('a table size that is not prime is a config error, as in Envoy (NoPrimeNumber)', () => {
    expect(() => build(maglev, endpointsAt(ports(90, 90)), deps(seeded(1)), { tableSize: 8 })).toThrowError(/services\.t\.balancer\.tableSize: expected a prime number, got 8/);
    expect(() => build(maglev, endpointsAt(ports(90, 90)), deps(seeded(1)), { tableSize: 65_536 })).toThrowError(/expected a prime number/);
  });
});
