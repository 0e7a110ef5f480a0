import { describe, expect, test } from 'vitest';
import { ringHash, buildRing } from '../../src/balancers/ring-hash.js';
import { maglev, buildMaglevTable } from '../../src/balancers/maglev.js';
import { hash32 } from '../../src/balancers/hash.js';
import type { BalancerDefinition } from '../../src/balancers/balancer.js';
import type { Endpoint } from '../../src/core/endpoint.js';
import { build, counts, ctx, deps, endpoints } from '../support/endpoints.js';
import { seeded, tolerance } from '../support/seeded.js';

const keys = Array.from({ length: 10_000 }, (_, i) => hash32(`user-${i}`));

function owners(def: BalancerDefinition<any>, eps: Endpoint[], raw: Record<string, unknown> = {}): string[] {
  const p = build(def, eps, deps(seeded(1)), raw);
  return keys.map((h) => {
    const r = p.pick(ctx({ hash: h }));
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

  test.each([3, 10, 30])('going from %i to n+1 endpoints moves about 1/(n+1) of the keys', (n) => {
    const all = endpoints(Array.from({ length: n + 1 }, () => 1));
    const before = owners(def, all.slice(0, n));
    const after = owners(def, all);
    const moved = before.filter((o, i) => o !== after[i]).length;
    const ideal = keys.length / (n + 1);
    if (def === ringHash) {
      // Ketama: only the new endpoint's keys move.
      expect(Math.abs(moved - ideal)).toBeLessThanOrEqual(ideal * 0.3 + tolerance(keys.length, 1 / (n + 1)));
      if (n >= 7) expect(new Set(after.filter((o, i) => o !== before[i]))).toEqual(new Set([all[n]!.key]));
    } else {
      // Maglev trades some extra movement (Envoy: up to ~2×) for an even, fast table.
      expect(moved).toBeGreaterThanOrEqual(ideal * 0.7);
      expect(moved).toBeLessThanOrEqual(ideal * 2);
    }
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
    for (const h of keys.slice(0, 2000)) {
      const first = p.pick(ctx({ hash: h }));
      const again = p.pick(ctx({ hash: h, skip: [(first as { endpoint: Endpoint }).endpoint], attempt: 1 }));
      expect(again.type).toBe('pick');
      expect((again as { endpoint: Endpoint }).endpoint).not.toBe((first as { endpoint: Endpoint }).endpoint);
    }
    expect(p.pick(ctx({ hash: 1, skip: eps })).type).toBe('fail');
  });

  test('bounded loads divert from an endpoint over capacity', () => {
    const load = { inFlight: 0 };
    const eps = endpoints([1, 1, 1, 1], load);
    const p = build(def, eps, deps(seeded(3)), { balanceFactor: 125 });
    const h = keys[0]!;
    const home = (p.pick(ctx({ hash: h })) as { endpoint: Endpoint }).endpoint;
    home.load.inFlight = 10;
    load.inFlight = 12; // cap = ceil(1.25 × 13 / 4) = 5 < 10
    expect((p.pick(ctx({ hash: h })) as { endpoint: Endpoint }).endpoint).not.toBe(home);
    home.load.inFlight = 1;
    expect((p.pick(ctx({ hash: h })) as { endpoint: Endpoint }).endpoint).toBe(home);
  });

  test('requests without a key are spread at random', () => {
    const eps = endpoints([1, 1, 1]);
    const n = 6000;
    const c = counts(build(def, eps, deps(seeded(4))), eps, n);
    for (const k of c) expect(Math.abs(k - n / 3)).toBeLessThanOrEqual(tolerance(n, 1 / 3) * 3);
  });
});

describe('tables', () => {
  test('maglev: golden assignments for a 7-slot table of three endpoints', () => {
    expect(Array.from(buildMaglevTable(['a', 'b', 'c'], [1, 1, 1], 7))).toEqual(Array.from(buildMaglevTable(['a', 'b', 'c'], [1, 1, 1], 7)));
    const t = Array.from(buildMaglevTable(['a', 'b', 'c'], [1, 1, 1], 7));
    expect(t).toHaveLength(7);
    expect(t.filter((x) => x === 0).length).toBeGreaterThanOrEqual(2);
    expect(t.filter((x) => x === 1).length).toBeGreaterThanOrEqual(2);
    expect(t.filter((x) => x === 2).length).toBeGreaterThanOrEqual(2);
    expect(t).toMatchInlineSnapshot(`
      [
        0,
        2,
        0,
        0,
        2,
        1,
        1,
      ]
    `);
  });

  test('maglev: weights 3:1 give 3:1 of the table', () => {
    const t = buildMaglevTable(['a', 'b'], [3, 1], 65537);
    const a = t.filter((x) => x === 0).length;
    expect(a / t.length).toBeCloseTo(0.75, 2);
  });

  test('ring-hash: ring size follows minimumRingSize and weights', () => {
    const r = buildRing(['a', 'b', 'c'], [1, 1, 2], 1024, 8_388_608);
    expect(r.hashes.length).toBeGreaterThanOrEqual(1024);
    for (let i = 1; i < r.hashes.length; i++) expect(r.hashes[i]!).toBeGreaterThanOrEqual(r.hashes[i - 1]!);
    const c = Array.from(r.owners).filter((o) => o === 2).length;
    expect(c / r.hashes.length).toBeCloseTo(0.5, 2);
  });

  test('options are validated with their path', () => {
    const eps = endpoints([1]);
    expect(() => build(maglev, eps, deps(Math.random), { tableSize: 65536 })).toThrowError(/services\.t\.balancer\.tableSize: expected a prime number/);
    expect(() => build(ringHash, eps, deps(Math.random), { minimumRingSize: 10, maximumRingSize: 5 })).toThrowError(/maximumRingSize: expected ≥ minimumRingSize/);
    expect(() => build(ringHash, eps, deps(Math.random), { balanceFactor: 99 })).toThrowError(/balanceFactor: expected an integer ≥ 100/);
  });
});
