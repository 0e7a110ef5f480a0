import { describe, expect, test } from 'vitest';
import { random } from '../../src/balancers/random.js';
import { leastRequest } from '../../src/balancers/least-request.js';
import { peakEwma } from '../../src/balancers/peak-ewma.js';
import { build, counts, ctx, deps, endpoints } from '../support/endpoints.js';
import { seeded, tolerance } from '../support/seeded.js';

describe('random (weighted, alias table)', () => {
  test('shares follow the weights within a tolerance from the sample size', () => {
    const eps = endpoints([1, 2, 3, 4]);
    const n = 20_000;
    const c = counts(build(random, eps, deps(seeded(1))), eps, n);
    c.forEach((k, i) => expect(Math.abs(k - (n * (i + 1)) / 10)).toBeLessThanOrEqual(tolerance(n, (i + 1) / 10)));
  });

  test('equal weights are uniform', () => {
    const eps = endpoints([1, 1, 1, 1, 1]);
    const n = 10_000;
    for (const k of counts(build(random, eps, deps(seeded(2))), eps, n)) expect(Math.abs(k - n / 5)).toBeLessThanOrEqual(tolerance(n, 0.2));
  });

  test('never returns a skipped endpoint, even when the heavy one is skipped', () => {
    const eps = endpoints([1000, 1, 1]);
    const p = build(random, eps, deps(seeded(3)));
    for (let i = 0; i < 2000; i++) {
      const r = p.pick(ctx({ skip: [eps[0]!] }));
      expect(r.type).toBe('pick');
      expect(r.type === 'pick' && r.endpoint).not.toBe(eps[0]);
    }
    expect(p.pick(ctx({ skip: eps })).type).toBe('fail');
  });
});

describe('least-request (power of two choices)', () => {
  test('the endpoint with fewer requests in flight wins', () => {
    const eps = endpoints([1, 1]);
    eps[0]!.load.inFlight = 5;
    const p = build(leastRequest, eps, deps(seeded(4)));
    for (let i = 0; i < 200; i++) expect((p.pick(ctx()) as { endpoint: unknown }).endpoint).toBe(eps[1]);
  });

  test('with many endpoints, the most loaded one is never picked with choiceCount = endpoints', () => {
    const eps = endpoints([1, 1, 1, 1]);
    eps.forEach((e, i) => (e.load.inFlight = i));
    const p = build(leastRequest, eps, deps(seeded(5)), { choiceCount: 4 });
    const c = counts(p, eps, 1000);
    expect(c[3]).toBe(0);
    expect(c[0]).toBeGreaterThan(500);
  });

  test('idle endpoints share evenly; weights are honoured', () => {
    const eps = endpoints([1, 3]);
    const n = 20_000;
    const c = counts(build(leastRequest, eps, deps(seeded(6))), eps, n);
    // Two distinct samples by weight, equal (zero) load: the first sampled wins → weight shares.
    expect(Math.abs(c[1]! - n * 0.75)).toBeLessThanOrEqual(tolerance(n, 0.75));
  });

  test('skip honoured; choiceCount validated', () => {
    const eps = endpoints([1, 1, 1]);
    const p = build(leastRequest, eps, deps(seeded(7)));
    for (let i = 0; i < 500; i++) expect((p.pick(ctx({ skip: [eps[1]!] })) as { endpoint: unknown }).endpoint).not.toBe(eps[1]);
    expect(p.pick(ctx({ skip: eps }))).toMatchObject({ type: 'fail' });
    expect(() => build(leastRequest, eps, deps(Math.random), { choiceCount: 1 })).toThrowError(/services\.t\.balancer\.choiceCount: expected an integer ≥ 2/);
  });
});

describe('peak-ewma', () => {
  test('a slow endpoint is avoided at once, and comes back after it recovers', () => {
    let now = 0;
    const eps = endpoints([1, 1, 1]);
    const p = build(peakEwma, eps, deps(seeded(8), () => now));
    const serve = (ms: number[]) => {
      // One request to each endpoint, completing with its latency.
      eps.forEach((e, i) => e.load.observeLatency(ms[i]!, now));
    };
    serve([10, 10, 100]); // endpoint 2 is 10× slower
    now += 10;
    let c = counts(p, eps, 3000);
    expect(c[2]).toBe(0);
    // It recovers: its estimate decays (10 s time constant) and fast samples pull it down.
    for (let t = 0; t < 60; t++) {
      now += 1000;
      serve([10, 10, 10]);
    }
    c = counts(p, eps, 3000);
    expect(c[2]).toBeGreaterThan(600);
  });

  test('in-flight requests raise the cost: a loaded fast endpoint yields to an idle one', () => {
    const eps = endpoints([1, 1]);
    eps[0]!.load.observeLatency(5, 0);
    eps[1]!.load.observeLatency(10, 0);
    eps[0]!.load.inFlight = 4; // cost 5 × 5 = 25 > 10 × 1
    const p = build(peakEwma, eps, deps(seeded(9)));
    for (let i = 0; i < 100; i++) expect((p.pick(ctx()) as { endpoint: unknown }).endpoint).toBe(eps[1]);
  });

  test('an unsampled endpoint with requests in flight is penalised (tried, not flooded)', () => {
    const eps = endpoints([1, 1]);
    eps[0]!.load.observeLatency(50, 0);
    eps[1]!.load.inFlight = 1; // no sample yet
    const p = build(peakEwma, eps, deps(seeded(10)));
    for (let i = 0; i < 100; i++) expect((p.pick(ctx()) as { endpoint: unknown }).endpoint).toBe(eps[0]);
  });
});
