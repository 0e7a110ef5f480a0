import { expect, test } from 'vitest';
import { LatencyQuantile } from '../../src/load/latency-quantile.js';
import { seeded } from '../support/seeded.js';

test('gives no estimate until the window holds minSamples', () => {
  const q = new LatencyQuantile(10_000, 100, 0);
  for (let i = 0; i < 99; i++) q.record(5, 0);
  expect(q.percentile(95, 0)).toBeUndefined();
  q.record(5, 0);
  expect(q.percentile(95, 0)).toBeGreaterThanOrEqual(5);
});

test('a percentile is never below the true sample and at most one bin (~9 %) above it', () => {
  const random = seeded(7);
  const q = new LatencyQuantile(10_000, 1, 0);
  const samples = Array.from({ length: 5_000 }, () => 0.2 + random() * 40);
  for (const s of samples) q.record(s, 0);
  const sorted = [...samples].sort((a, b) => a - b);
  for (const p of [50, 90, 95, 99, 99.9]) {
    const truth = sorted[Math.ceil((p / 100) * sorted.length) - 1]!;
    const got = q.percentile(p, 0)!;
    expect(got, `p${p}`).toBeGreaterThanOrEqual(truth);
    expect(got, `p${p}`).toBeLessThanOrEqual(truth * 2 ** (1 / 8) * 1.0001);
  }
});

test('samples older than the window no longer count', () => {
  const q = new LatencyQuantile(10_000, 10, 0);
  for (let i = 0; i < 100; i++) q.record(50, 1_000);
  expect(q.percentile(50, 1_000)).toBeGreaterThanOrEqual(50);
  for (let i = 0; i < 100; i++) q.record(2, 9_000);
  expect(q.count).toBe(200); // both sets are inside the window at 9 s
  // 11.5 s: the slice of t = 1 s has left the window; only the 2 ms samples remain.
  const later = q.percentile(50, 11_500)!;
  expect(q.count).toBe(100);
  expect(later).toBeGreaterThanOrEqual(2);
  expect(later).toBeLessThan(2.2);
  // Far later, everything has left: no estimate.
  expect(q.percentile(50, 60_000)).toBeUndefined();
  expect(q.count).toBe(0);
});

test('a cached percentile follows new samples', () => {
  const q = new LatencyQuantile(10_000, 1, 0);
  for (let i = 0; i < 100; i++) q.record(1, 0);
  expect(q.percentile(95, 0)).toBeLessThan(1.1);
  for (let i = 0; i < 1_000; i++) q.record(30, 0);
  expect(q.percentile(95, 0)).toBeGreaterThanOrEqual(30);
});

test('values outside the bins land in the first or the last one', () => {
  const q = new LatencyQuantile(10_000, 1, 0);
  q.record(0, 0);
  expect(q.percentile(50, 0)).toBeGreaterThan(0);
  q.record(1e9, 0);
  q.record(1e9, 0);
  expect(q.percentile(99, 0)).toBeGreaterThan(600_000);
});
