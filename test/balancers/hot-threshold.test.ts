import { expect, test } from 'vitest';
import { hotThreshold, runningThreshold } from '../../src/balancers/hot-threshold.js';
import { seeded } from '../support/seeded.js';

const slots = (q: number): Float64Array => Float64Array.of(0, 0, 0, q);

test('over a small fleet: the 0.84 quantile, linear between order statistics, capped at twice the mean + 1', () => {
  const out = slots(0.84);
  const scratch = new Float64Array(8);
  hotThreshold(Float64Array.of(0, 10, 0, 0, 0), 5, scratch, out);
  expect(out[0]).toBeCloseTo(3.6, 9); // 0 + 0.36 × 10; the cap (2 × 2 + 1 = 5) does not bind
  hotThreshold(Float64Array.of(2, 2, 2, 2, 2), 5, scratch, out);
  expect(out[0]).toBe(2); // nobody above it: nobody hot
  hotThreshold(Float64Array.of(15, 14, 1, 1, 0), 5, scratch, out);
  expect(out[0]).toBeCloseTo(2 * 6.2 + 1, 9); // the quantile (14.36) would let both busy ones stay cold
  hotThreshold(Float64Array.of(3, 1), 2, scratch, out);
  expect(out[0]).toBeCloseTo(1 + 0.84 * 2, 9); // of two, the busier is hot
});

test('over sampled candidates: the running estimate settles at the quantile of what it sees', () => {
  const hot = slots(0.84);
  const rnd = seeded(3);
  const rifs = new Float64Array(2);
  // RIFs uniform on 0..20: 16 % of them are above ~17.4 (between 17 and 18); the mean is 10, the cap 21.
  for (let i = 0; i < 20_000; i++) {
    rifs[0] = Math.floor(rnd() * 21);
    rifs[1] = Math.floor(rnd() * 21);
    runningThreshold(rifs, 2, hot);
  }
  expect(hot[0]).toBeGreaterThan(16.5);
  expect(hot[0]).toBeLessThan(18.5);
  expect(hot[2]).toBeGreaterThan(8);
  expect(hot[2]).toBeLessThan(12);
  // A fleet at rest: it comes down to 0 again.
  rifs.fill(0);
  for (let i = 0; i < 5_000; i++) runningThreshold(rifs, 2, hot);
  expect(hot[0]).toBeLessThan(0.5);
});
