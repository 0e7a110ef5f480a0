// An injected random source or clock that misbehaves (NaN, ±Infinity, out of range, throwing,
// going back) cannot turn a delay into a 1 ms timer: the mesh guards the functions (core/clock.ts),
// and each delay computed from them is clamped to its configured bounds.
import { afterEach, describe, expect, test, vi } from 'vitest';
import { clampDelay, guardClock, guardRandom } from '../../src/core/clock.js';
import { HealthChecker } from '../../src/health/health-check.js';
import { parseHealthCheck } from '../../src/health/health-config.js';
import { backoffMs, parseRetryConfig } from '../../src/layers/retry-policy.js';
import { ConcurrencyLimit, parseLimitsConfig } from '../../src/layers/concurrency-limit.js';

afterEach(() => {
  vi.useRealTimers();
});

const BELOW_ONE = 1 - 2 ** -53;
const bad: [string, unknown][] = [
  ['NaN', NaN],
  ['Infinity', Infinity],
  ['-Infinity', -Infinity],
  ['-1', -1],
  ['1', 1],
  ['7', 7],
  ['a string', '0.3'],
  ['undefined', undefined],
];

describe('guardRandom', () => {
  test('a reading in [0, 1) passes unchanged, and nothing is warned', () => {
    const warnings: string[] = [];
    const readings = [0, 0.25, BELOW_ONE];
    const r = guardRandom(() => readings.shift()!, (m) => warnings.push(m));
    expect([r(), r(), r()]).toEqual([0, 0.25, BELOW_ONE]);
    expect(warnings).toEqual([]);
  });

  test.each(bad)('%s becomes a number in [0, 1): below 0 → 0, 1 or more → just below 1, NaN or not a number → 0.5', (_name, value) => {
    const r = guardRandom(() => value as number, () => {});
    const v = r();
    expect(v).toBeGreaterThanOrEqual(0);
    expect(v).toBeLessThan(1);
    const n = value as number;
    expect(v).toBe(typeof value !== 'number' || Number.isNaN(n) ? 0.5 : n < 0 ? 0 : BELOW_ONE);
  });

  test('a random source that throws gives 0.5; the logger is warned once, whatever happens next', () => {
    const warnings: string[] = [];
    let calls = 0;
    const r = guardRandom(() => {
      if (++calls === 1) throw new Error('entropy pool empty');
      return NaN;
    }, (m) => warnings.push(m));
    expect([r(), r(), r()]).toEqual([0.5, 0.5, 0.5]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/random\(\) threw \(entropy pool empty\), used 0\.5 instead; it must return a number in \[0, 1\)/);
  });
});

describe('guardClock', () => {
  test('a finite clock that goes forward passes unchanged', () => {
    const readings = [-5, 10, 10, 250.5];
    const warnings: string[] = [];
    const now = guardClock(() => readings.shift()!, (m) => warnings.push(m));
    expect([now(), now(), now(), now()]).toEqual([-5, 10, 10, 250.5]);
    expect(warnings).toEqual([]);
  });

  test('a bad reading repeats the last good one (0 before any); going back holds the clock; warned once', () => {
    const readings: unknown[] = [NaN, 100, Infinity, 50, undefined, 120, -Infinity];
    const warnings: string[] = [];
    const now = guardClock(() => readings.shift() as number, (m) => warnings.push(m));
    expect(Array.from({ length: 7 }, () => now())).toEqual([0, 100, 100, 100, 100, 120, 120]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/now\(\) returned a number \(NaN\), used 0 instead; it must be a monotonic clock in ms/);
  });

  test('a clock that throws repeats the last good reading', () => {
    let t = 40;
    const now = guardClock(() => {
      if (t > 40) throw new Error('clock unplugged');
      return t++;
    }, () => {});
    expect([now(), now(), now()]).toEqual([40, 40, 40]);
  });
});

describe('clampDelay', () => {
  test.each([
    [NaN, 500],
    [Infinity, 500],
    [-Infinity, 100],
    [-3, 100],
    [250, 250],
    [1e9, 500],
  ])('%s within [100, 500] → %s', (ms, expected) => {
    expect(clampDelay(ms, 100, 500)).toBe(expected);
  });
});

describe('delays computed from a bad random source or clock stay within their bounds', () => {
  const draws: [string, () => number][] = [
    ['NaN', () => NaN],
    ['-Infinity', () => -Infinity],
    ['Infinity', () => Infinity],
    ['-1', () => -1],
    ['5', () => 5],
  ];

  test.each(draws)('health checks: random %s waits within [intervalMs, intervalMs × (1 + jitter)]', (_name, random) => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const config = parseHealthCheck({ path: '/healthz', intervalMs: 1_000, intervalJitterPercent: 20 }, 'healthCheck')!;
    const checker = new HealthChecker(config, 'api', random, () => {}, () => {});
    try {
      for (let i = 0; i < 3; i++) {
        const t = Date.now();
        vi.advanceTimersToNextTimer();
        expect(Date.now() - t).toBeGreaterThanOrEqual(1_000);
        expect(Date.now() - t).toBeLessThanOrEqual(1_200);
      }
    } finally {
      checker.close();
    }
    expect(vi.getTimerCount()).toBe(0);
  });

  test.each(draws)('retry back-off: random %s stays within [0, cap]; NaN waits the cap', (name, random) => {
    const policy = parseRetryConfig({ backoff: { baseMs: 100, maxMs: 1_000 } }, 'retry')!;
    // Envoy's windows: retry N waits in [0, (2^N − 1) × base), capped at maxMs.
    for (const [retry, cap] of [[1, 100], [2, 300], [3, 700], [4, 1_000], [6, 1_000]] as const) {
      const d = backoffMs(policy, retry, random);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(cap);
      if (name === 'NaN') expect(d).toBe(cap);
    }
  });

  // A clock stuck in the past never reaches the deadline: the queue then looks again every
  // maxQueueTimeMs (the request's own timeout still ends it), never every millisecond.
  const clocks: [string, () => () => number, number][] = [
    ['NaN', () => () => NaN, 1],
    ['Infinity', () => () => Infinity, 1],
    ['0, then NaN', () => { let n = 0; return () => (n++ === 0 ? 0 : NaN); }, 1],
    ['0, then -Infinity', () => { let n = 0; return () => (n++ === 0 ? 0 : -Infinity); }, 0],
  ];
  test.each(clocks)('the queue of the concurrency limit: a clock of %s looks at its waiters after maxQueueTimeMs, not 1 ms', (_name, clock, expires) => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const limit = new ConcurrencyLimit(parseLimitsConfig({ maxRequests: 1, maxQueueTimeMs: 500 }, 'limits'), clock());
    expect(limit.tryAcquire()).toBe(true);
    let expired = 0;
    expect(limit.acquire({ admit: () => {}, expire: () => void expired++, done: false, queued: false, deadline: 0 })).toBe('queued');
    for (let i = 1; i <= 3; i++) {
      const t = Date.now();
      vi.advanceTimersToNextTimer();
      expect(Date.now() - t).toBe(500);
      expect(expired).toBe(expires);
      if (expired) break;
    }
    expect(vi.getTimerCount()).toBe(1 - expires);
    limit.release(); // the slot frees: a waiter still queued takes it, and the timer goes
    expect(vi.getTimerCount()).toBe(0);
  });
});
