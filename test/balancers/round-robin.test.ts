import { describe, expect, test } from 'vitest';
import { roundRobin, smoothSchedule } from '../../src/balancers/round-robin.js';
import { build, ctx, deps, endpoints } from '../support/endpoints.js';

describe('round-robin (smooth weighted, as nginx)', () => {
  test('weights 5:1:1 interleave as nginx does: a a b a c a a', () => {
    expect(smoothSchedule([5, 1, 1]).map((i) => 'abc'[i]).join(' ')).toBe('a a b a c a a');
  });

  test('the picker follows the schedule from a random phase, period after period', () => {
    const eps = endpoints([5, 1, 1]);
    const p = build(roundRobin, eps, deps(() => 0));
    const seq: string[] = [];
    for (let i = 0; i < 14; i++) {
      const r = p.pick(ctx());
      seq.push('abc'[eps.indexOf((r as { endpoint: (typeof eps)[0] }).endpoint)]!);
    }
    expect(seq.join('')).toBe('aabacaaaabacaa');
  });

  test('equal weights rotate; weights are reduced by their gcd', () => {
    expect(smoothSchedule([1, 1, 1])).toEqual([0, 1, 2]);
    const eps = endpoints([20, 10]);
    const p = build(roundRobin, eps, deps(() => 0));
    const picks = Array.from({ length: 6 }, () => eps.indexOf((p.pick(ctx()) as { endpoint: (typeof eps)[0] }).endpoint));
    expect(picks).toEqual([0, 1, 0, 0, 1, 0]);
  });

  test('a skipped endpoint is never returned; all skipped gives NO_HEALTHY_ENDPOINT', () => {
    const eps = endpoints([3, 1, 1]);
    const p = build(roundRobin, eps, deps(() => 0.3));
    for (let i = 0; i < 50; i++) {
      const r = p.pick(ctx({ skip: [eps[0]!] }));
      expect(r.type === 'pick' && r.endpoint).not.toBe(eps[0]);
    }
    const none = p.pick(ctx({ skip: eps }));
    expect(none).toMatchObject({ type: 'fail', error: { code: 'NO_HEALTHY_ENDPOINT' } });
  });

  test('huge weight sums use the O(n) smooth step and still honour weights', () => {
    const eps = endpoints([1_000_000, 999_999, 1]);
    const p = build(roundRobin, eps, deps(() => 0));
    const c = [0, 0, 0];
    for (let i = 0; i < 2000; i++) c[eps.indexOf((p.pick(ctx()) as { endpoint: (typeof eps)[0] }).endpoint)]!++;
    expect(c[0]! + c[1]!).toBe(2000);
    expect(Math.abs(c[0]! - c[1]!)).toBeLessThanOrEqual(2);
  });

  test('options: none accepted', () => {
    expect(() => build(roundRobin, endpoints([1]), deps(Math.random), { x: 1 })).toThrowError(/services\.t\.balancer\.x: unknown field/);
  });
});
