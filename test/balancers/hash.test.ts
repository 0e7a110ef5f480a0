// What ring-hash and maglev share: stable keys, little movement on a change, weights, retries,
// bounded loads. Envoy's own rings and tables are checked in ring-hash.test.ts and maglev.test.ts.
import { describe, expect, test } from 'vitest';
import { ringHash, buildRing } from '../../src/balancers/ring-hash.js';
import { maglev, buildMaglevTable } from '../../src/balancers/maglev.js';
import { xxh64Utf8 } from '../../src/balancers/xxhash64.js';
import type { BalancerDefinition, PickContext } from '../../src/balancers/balancer.js';
import type { Endpoint } from '../../src/core/endpoint.js';
import { build, counts, ctx, deps, endpoints } from '../support/endpoints.js';
import { seeded, tolerance } from '../support/seeded.js';

// 10,000 request hashes: XXH64 of `user-<i>`, as a header value would hash.
const out = new Uint32Array(2);
const keys = Array.from({ length: 10_000 }, (_, i) => {
  xxh64Utf8(`user-${i}`, 0, out);
  return { hash: out[0]!, hashLow: out[1]! };
});
const at = (k: { hash: number; hashLow: number }, more: Partial<PickContext> = {}): PickContext => ({ ...ctx(), ...k, ...more });

function owners(def: BalancerDefinition<any>, eps: Endpoint[], raw: Record<string, unknown> = {}): string[] {
  const p = build(def, eps, deps(seeded(1)), raw);
  return keys.map((k) => {
    const r = p.pick(at(k));
    if (r.type !== 'pick') throw new Error('no pick');
    return r.endpoint.key;
  });
}

describe.each([
  ['ring-hash', ringHash as BalancerDefinition<any>],
  ['maglev', maglev as BalancerDefinition<any>],
])('%s', (_name, def) => {
  test('the same key goes to the same endpoint, across rebuilds and endpoint order', () => {
    const eps = endpoints([1, 1, 1, 1, 1]);
    expect(owners(def, eps)).toEqual(owners(def, [...eps].reverse()));
  });

  test.each([3, 10, 30])('going from %i to n+1 endpoints and back moves about 1/(n+1) of the keys', (n) => {
    const all = endpoints(Array.from({ length: n + 1 }, () => 1));
    const before = owners(def, all.slice(0, n));
    const after = owners(def, all);
    const moved = before.filter((o, i) => o !== after[i]).length;
    const toNew = after.filter((o, i) => o !== before[i] && o === all[n]!.key).length;
    const removed = owners(def, all.slice(1));
    const movedBack = after.filter((o, i) => o !== removed[i]).length;
    const ideal = keys.length / (n + 1);
    const slack = tolerance(keys.length, 1 / (n + 1));
    // The new endpoint takes its share…
    expect(Math.abs(toNew - ideal)).toBeLessThanOrEqual(ideal * 0.2 + slack);
    if (def === ringHash) {
      // …and, because Envoy rescales the ring to the smallest weight (every endpoint's point count
      // changes with n), the others trade the points they gave up: measured 1.4–1.9× the ideal
      // on adding (n = 3, 10, 30) and 1.3–1.6× on removing.
      expect(moved).toBeLessThanOrEqual(ideal * 2 + slack);
      expect(movedBack).toBeLessThanOrEqual(ideal * 2 + slack);
    } else {
      // Maglev's table moves little more than the ideal (measured 0.97–1.05×).
      expect(moved).toBeLessThanOrEqual(ideal * 1.2 + slack);
      expect(movedBack).toBeLessThanOrEqual(ideal * 1.2 + slack);
    }
    expect(moved).toBeGreaterThanOrEqual(toNew);
  });

  test('keys spread over endpoints in proportion to weight', () => {
    const eps = endpoints([1, 1, 2]);
    const o = owners(def, eps);
    const share = eps.map((e) => o.filter((x) => x === e.key).length / keys.length);
    expect(share[2]).toBeGreaterThan(0.4);
    expect(share[2]).toBeLessThan(0.6);
    expect(share[0]).toBeGreaterThan(0.18);
  });

  test('a skipped endpoint moves only its own keys (retries go elsewhere)', () => {
    const eps = endpoints([1, 1, 1, 1]);
    const p = build(def, eps, deps(seeded(2)));
    for (const k of keys.slice(0, 2000)) {
      const first = p.pick(at(k));
      const again = p.pick(at(k, { skip: (e) => e === (first as { endpoint: Endpoint }).endpoint, attempt: 1 }));
      expect(again.type).toBe('pick');
      expect((again as { endpoint: Endpoint }).endpoint).not.toBe((first as { endpoint: Endpoint }).endpoint);
    }
    expect(p.pick(ctx({ hash: 1, skip: eps })).type).toBe('fail');
  });

  test('bounded loads divert from an endpoint over capacity', () => {
    const load = { inFlight: 0, recentLatency: true };
    const eps = endpoints([1, 1, 1, 1], load);
    const p = build(def, eps, deps(seeded(3)), { balanceFactor: 125 });
    const k = keys[0]!;
    const home = (p.pick(at(k)) as { endpoint: Endpoint }).endpoint;
    home.load.inFlight = 10;
    load.inFlight = 12; // cap = ceil(1.25 × 13 / 4) = 5 < 10
    expect((p.pick(at(k)) as { endpoint: Endpoint }).endpoint).not.toBe(home);
    home.load.inFlight = 1;
    expect((p.pick(at(k)) as { endpoint: Endpoint }).endpoint).toBe(home);
  });

  test('requests without a key are spread at random', () => {
    const eps = endpoints([1, 1, 1]);
    const n = 6000;
    const c = counts(build(def, eps, deps(seeded(4))), eps, n);
    for (const k of c) expect(Math.abs(k - n / 3)).toBeLessThanOrEqual(tolerance(n, 1 / 3) * 3);
  });
});

describe('tables', () => {
  test('maglev: weights 3:1 give 3:1 of the table', () => {
    const t = buildMaglevTable(['a', 'b'], [3, 1], 65537);
    const a = t.filter((x) => x === 0).length;
    expect(a / t.length).toBeCloseTo(0.75, 2);
  });

  test('ring-hash: the ring is sorted and its size follows minimumRingSize and weights', () => {
    const r = buildRing(['a', 'b', 'c'], [1, 1, 2], 1024, 8_388_608);
    // The lightest weight is 1/4, so the scale is ceil(1024 / 4) × 4 = 1024: 256, 256 and 512 points.
    expect(r.high).toHaveLength(1024);
    for (let i = 1; i < r.high.length; i++) expect(r.high[i]! > r.high[i - 1]! || (r.high[i] === r.high[i - 1] && r.low[i]! >= r.low[i - 1]!)).toBe(true);
    expect(Array.from(r.owners).filter((o) => o === 2)).toHaveLength(512);
    // maximumRingSize caps it.
    expect(buildRing(['a', 'b', 'c'], [1, 1, 2], 1024, 100).high).toHaveLength(100);
  });

  test('options are validated with their path', () => {
    const eps = endpoints([1]);
    expect(() => build(maglev, eps, deps(Math.random), { tableSize: 65536 })).toThrowError(/services\.t\.balancer\.tableSize: expected a prime number/);
    expect(() => build(ringHash, eps, deps(Math.random), { minimumRingSize: 10, maximumRingSize: 5 })).toThrowError(/maximumRingSize: expected ≥ minimumRingSize/);
    expect(() => build(ringHash, eps, deps(Math.random), { balanceFactor: 99 })).toThrowError(/balanceFactor: expected an integer ≥ 100/);
  });
});
