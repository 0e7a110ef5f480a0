/**
 * The tail-latency target of issue #12 in virtual time (test/support/closed-loop.ts), so that it is
 * checked on every run whatever the machine: five replicas, one 10× slower, the caller stalling now
 * and then; the default balancer's p99 within 1.25× of an all-fast fleet's in the four scenarios of
 * bench/tail-latency.mjs, with steady load and with load that pauses (as contenders alternating in
 * the bench do). peak-ewma, measured the same way, keeps sending the slow replica a share that sets
 * its p99 — the same assertions fail for it.
 */
import { describe, expect, test } from 'vitest';
import { prequal } from '../../src/balancers/prequal.js';
import { peakEwma } from '../../src/balancers/peak-ewma.js';
import { roundRobin } from '../../src/balancers/round-robin.js';
import { closedLoop, type LoopOptions } from '../support/closed-loop.js';

const scenarios = [
  { fastMs: 1, concurrency: 8 },
  { fastMs: 1, concurrency: 32 },
  { fastMs: 2, concurrency: 8 },
  { fastMs: 2, concurrency: 32 },
];

describe.each([
  ['steady load', {}],
  ['load pausing 2.7 s in every 3 s', { onMs: 300, offMs: 2700, seconds: 30 }],
] as const)('one replica 10× slower, %s', (_, extra: Partial<LoopOptions>) => {
  test.each(scenarios)('$fastMs ms / 10×, $concurrency in flight: prequal p99 ≤ 1.25× all fast; peak-ewma over it', ({ fastMs, concurrency }) => {
    const o = { concurrency, ...extra };
    const allFast = closedLoop(roundRobin, [fastMs, fastMs, fastMs, fastMs, fastMs], o);
    const withSlow = [10 * fastMs, fastMs, fastMs, fastMs, fastMs];
    const pq = closedLoop(prequal, withSlow, o);
    expect(pq.p99Ms / allFast.p99Ms).toBeLessThanOrEqual(1.25);
    expect(pq.shares[0]).toBeLessThan(0.002);
    const pe = closedLoop(peakEwma, withSlow, o);
    expect(pe.p99Ms / allFast.p99Ms).toBeGreaterThan(1.25);
    expect(pe.shares[0]).toBeGreaterThan(0.01);
  });
});

test('a healthy fleet is shared: no replica of five gets less than 10 % or more than 30 %', () => {
  for (const concurrency of [8, 32]) {
    const r = closedLoop(prequal, [1, 1, 1, 1, 1], { concurrency });
    for (const s of r.shares) {
      expect(s).toBeGreaterThan(0.1);
      expect(s).toBeLessThan(0.3);
    }
  }
});
