import { afterEach, describe, expect, test } from 'vitest';
import type { ServerResponse } from 'node:http';
import { request } from 'undici';
import { createMesh, type Mesh } from '../../src/index.js';
import { startBackend, type Backend } from '../support/backend.js';
import { Gradient2Limit } from '../../src/layers/gradient2-limit.js';
import { VegasLimit } from '../../src/layers/vegas-limit.js';
import { AdaptiveLimit, parseAdaptiveConfig, adaptiveToJSON, type ParsedAdaptive } from '../../src/layers/adaptive-limit.js';
import { ConcurrencyLimit, parseLimitsConfig } from '../../src/layers/concurrency-limit.js';
import { MeshEvents } from '../../src/core/events.js';
import { seeded } from '../support/seeded.js';

const gradient2 = (raw: Record<string, unknown> = {}) => parseAdaptiveConfig({ algorithm: 'gradient2', ...raw }, 'limits.adaptive') as Extract<ParsedAdaptive, { algorithm: 'gradient2' }>;
const vegas = (raw: Record<string, unknown> = {}) => parseAdaptiveConfig({ algorithm: 'vegas', ...raw }, 'limits.adaptive') as Extract<ParsedAdaptive, { algorithm: 'vegas' }>;

describe('Gradient2 (Netflix concurrency-limits)', () => {
  test('steady latency with the limit in use: grows by queueSize × smoothing a sample, up to maxLimit', () => {
    const g = new Gradient2Limit(gradient2({ initialLimit: 20, maxLimit: 30 }));
    expect(g.update(10, 20)).toBeCloseTo(20.8, 10); // 20 × 0.8 + (20 × 1 + 4) × 0.2
    for (let i = 0; i < 100; i++) g.update(10, Math.ceil(g.limit));
    expect(g.limit).toBe(30);
  });

  test('rising latency lowers the limit (at most 10 % a sample), never below minLimit', () => {
    const g = new Gradient2Limit(gradient2({ initialLimit: 100, minLimit: 20 }));
    for (let i = 0; i < 20; i++) g.update(10, 100);
    const before = g.limit;
    const next = g.update(40, 200); // long ≈ 11.5, gradient = max(0.5, 1.5 × 11.5 / 40) = 0.5
    expect(next).toBeCloseTo(before * 0.8 + (before * 0.5 + 4) * 0.2, 10);
    let min = Infinity;
    for (let i = 0; i < 200; i++) min = Math.min(min, g.update(200, 200));
    expect(min).toBeGreaterThanOrEqual(20);
    expect(g.limit).toBeLessThan(before / 2);
  });

  test('recovers: once latency is low again, the limit grows back', () => {
    const g = new Gradient2Limit(gradient2({ initialLimit: 50, minLimit: 5, maxLimit: 100 }));
    for (let i = 0; i < 50; i++) g.update(10, 100);
    for (let i = 0; i < 40; i++) g.update(80, 100);
    const low = g.limit;
    expect(low).toBeLessThan(20);
    for (let i = 0; i < 200; i++) g.update(10, 100);
    expect(g.limit).toBe(100);
  });

  test('a long-term average left high by a long spell of load is cut by 5 % a sample while over twice the sample', () => {
    const g = new Gradient2Limit(gradient2());
    for (let i = 0; i < 600; i++) g.update(80, 0);
    expect(g.longRttMs).toBeGreaterThan(75);
    for (let i = 0; i < 60; i++) g.update(10, 0);
    // Without the cut, 60 samples of the 600-sample average would leave it near 73.
    expect(g.longRttMs).toBeLessThan(25);
  });

  test('app-limited: with fewer than limit / 2 in flight the limit does not move', () => {
    const g = new Gradient2Limit(gradient2({ initialLimit: 40 }));
    for (let i = 0; i < 50; i++) g.update(i % 2 ? 5 : 500, 19);
    expect(g.limit).toBe(40);
  });
});

describe('Vegas (Netflix concurrency-limits)', () => {
  test('no queue: grows by beta; a queue over beta: shrinks by log10; a drop: shrinks; clamped to [min, max]', () => {
    const v = new VegasLimit(vegas({ initialLimit: 100, maxLimit: 200, probeMultiplier: 1000 }), () => 0);
    expect(v.update(10, 100, false)).toBe(100); // first sample: becomes rtt_noload
    expect(v.update(10, 100, false)).toBe(112); // queue 0 ≤ log10(100) = 2: + beta (6 × 2)
    expect(v.update(20, 112, false)).toBe(110); // queue ceil(112 × 0.5) = 56 > beta 12: − 2
    expect(v.update(10.5, 110, false)).toBe(110); // queue ceil(110 × (1 − 10/10.5)) = 6, within [alpha 6, beta 12]: unchanged
    expect(v.update(10.3, 110, false)).toBe(112); // queue 4 < alpha: + log10
    expect(v.update(10, 1, true)).toBe(110); // a drop shrinks even when app-limited
    expect(v.update(10, 10, false)).toBe(110); // app-limited: unchanged
    const capped = new VegasLimit(vegas({ initialLimit: 195, maxLimit: 200, probeMultiplier: 1000 }), () => 0);
    capped.update(10, 200, false);
    expect(capped.update(10, 200, false)).toBe(200);
    const floored = new VegasLimit(vegas({ initialLimit: 3, minLimit: 2, probeMultiplier: 1000 }), () => 0);
    floored.update(10, 3, false);
    expect(floored.update(10, 3, true)).toBe(2);
    expect(floored.update(10, 3, true)).toBe(2);
  });

  test('rtt_noload is probed again every probeMultiplier × limit × jitter samples', () => {
    // jitter = 0.5 + 0 × 0.5: a probe every 0.5 × 4 × 10 = 20 samples.
    const v = new VegasLimit(vegas({ initialLimit: 10, maxLimit: 10, probeMultiplier: 4 }), () => 0);
    // In flight 1 of 10: app-limited, so the limit (and with it the probe interval) stays put.
    v.update(5, 1, false);
    for (let i = 2; i < 20; i++) v.update(50, 1, false);
    expect(v.noLoadRttMs).toBe(5);
    v.update(50, 1, false); // the 20th sample: a probe
    expect(v.noLoadRttMs).toBe(50);
  });
});

describe('adaptive limit config', () => {
  test('defaults per algorithm, and toJSON round-trips', () => {
    expect(gradient2()).toEqual({ algorithm: 'gradient2', initialLimit: 20, minLimit: 20, maxLimit: 200, smoothing: 0.2, windowMs: 100, queueSize: 4, rttTolerance: 1.5, longWindow: 600 });
    expect(vegas()).toEqual({ algorithm: 'vegas', initialLimit: 20, minLimit: 1, maxLimit: 1000, smoothing: 1, windowMs: 0, alpha: undefined, beta: undefined, probeMultiplier: 30 });
    for (const p of [gradient2({ minLimit: 5, initialLimit: 5 }), vegas({ alpha: 2, beta: 4 })]) expect(parseAdaptiveConfig(adaptiveToJSON(p), 'x')).toEqual(p);
    expect(parseAdaptiveConfig({}, 'x').algorithm).toBe('gradient2');
    expect(gradient2({ minLimit: 50 }).initialLimit).toBe(50); // the default start is raised to the minimum
  });

  const bad: [Record<string, unknown>, RegExp][] = [
    [{ algorithm: 'aimd' }, /limits\.adaptive\.algorithm: expected one of "gradient2", "vegas"/],
    [{ minLimit: 30, maxLimit: 10 }, /limits\.adaptive\.minLimit: 30 is above maxLimit \(10\)/],
    [{ initialLimit: 500 }, /limits\.adaptive\.initialLimit: expected a limit between minLimit \(20\) and maxLimit \(200\), got 500/],
    [{ smoothing: 0 }, /limits\.adaptive\.smoothing: expected a number > 0 and ≤ 1/],
    [{ rttTolerance: 0.5 }, /limits\.adaptive\.rttTolerance: expected a number ≥ 1/],
    [{ minLimit: 1.5 }, /limits\.adaptive\.minLimit: expected an integer/],
    [{ alpha: 3 }, /limits\.adaptive\.alpha: unknown field/],
    [{ algorithm: 'vegas', alpha: 6, beta: 3 }, /limits\.adaptive\.beta: expected a queue above alpha \(6\), got 3/],
    [{ algorithm: 'vegas', queueSize: 3 }, /limits\.adaptive\.queueSize: unknown field/],
  ];
  test.each(bad)('%o is refused with the field path', (raw, message) => {
    expect(() => parseAdaptiveConfig(raw, 'limits.adaptive')).toThrowError(message);
  });

  test('only a service\'s limits adapt: a subset\'s adaptive is refused', () => {
    expect(() => parseLimitsConfig({ adaptive: { algorithm: 'vegas' } }, 'services.a.subsets.v1.limits')).toThrowError(/services\.a\.subsets\.v1\.limits\.adaptive: only a service's limits adapt/);
    expect(parseLimitsConfig({ adaptive: { algorithm: 'vegas' } }, 'services.a.limits', true).adaptive?.algorithm).toBe('vegas');
  });
});

describe('adaptive limit windows', () => {
  test('the algorithm is updated once a window has lasted windowMs and holds 10 samples, with their mean latency and most in flight', () => {
    const sizes: number[] = [];
    const slots = { active: 0, get max() { return sizes.at(-1)!; }, resize: (n: number) => void sizes.push(n) };
    const log = { debug: () => {}, warn: () => {} };
    const limit = new AdaptiveLimit(gradient2({ initialLimit: 20, maxLimit: 100, queueSize: 10 }), slots, { service: 's', events: new MeshEvents(() => {}), random: () => 0, log });
    expect(sizes).toEqual([20]);
    // 10 samples within 100 ms: the window is not over yet. One had 20 in flight (≥ limit / 2).
    for (let i = 0; i < 10; i++) {
      slots.active = i === 3 ? 20 : 1;
      limit.observe('success', 200, 10, i);
    }
    expect(sizes).toEqual([20]);
    slots.active = 1;
    limit.observe('success', 200, 10, 100); // 100 ms and 11 samples: one update, 20 × 0.8 + (20 + 10) × 0.2
    expect(sizes).toEqual([20, 22]);
    // 100 ms more but only 5 samples: no update; failures without a response are not samples.
    limit.observe('connect-failure', 0, 1, 150);
    limit.observe('reset', 0, 1, 150);
    for (let t = 101; t <= 300; t += 40) limit.observe('success', 200, 10, t);
    expect(sizes).toEqual([20, 22]);
    expect(limit.limit).toBe(22);
  });
});

/**
 * A simulated upstream: `workers` serve requests in arrival order, each for `serviceMs` (±10 %,
 * seeded), the rest wait in its queue. Requests arrive at `ratePerS`, open loop; each is admitted
 * by the service's ConcurrencyLimit (no local queue: the excess fails fast) and its latency fed
 * to the adaptive limit when it completes — the service's path with virtual time.
 */
function simulate(adaptive: ParsedAdaptive | null, phases: { ms: number; workers: number }[], opts: { ratePerS: number; serviceMs: number; maxRequests?: number }) {
  const slots = new ConcurrencyLimit(parseLimitsConfig({ maxRequests: opts.maxRequests ?? 1024, maxPendingRequests: 0 }, 'limits'), () => 0);
  const events = new MeshEvents(() => {});
  const changes: number[] = [];
  events.on('concurrency-limit', (e) => changes.push(e.limit));
  const log = { debug: () => {}, warn: () => {} };
  const limit = adaptive ? new AdaptiveLimit(adaptive, slots, { service: 'sim', events, random: seeded(1), log }) : null;
  const random = seeded(2);
  const completions: { at: number; latency: number }[] = [];
  let free: number[] = [];
  const results = phases.map(() => ({ admitted: 0, shed: 0, latencies: [] as number[], minLimit: Infinity, maxLimit: 0, endLimit: 0 }));
  let t = 0;
  const step = 1000 / opts.ratePerS;
  const complete = (until: number, phase: (typeof results)[number]): void => {
    completions.sort((a, b) => a.at - b.at);
    while (completions.length > 0 && completions[0]!.at <= until) {
      const c = completions.shift()!;
      limit?.observe('success', 200, c.latency, c.at);
      slots.release();
      phase.latencies.push(c.latency);
      phase.minLimit = Math.min(phase.minLimit, slots.max);
      phase.maxLimit = Math.max(phase.maxLimit, slots.max);
    }
  };
  phases.forEach((p, i) => {
    const phase = results[i]!;
    // Capacity changes: extra workers leave once they finish; new ones are free at once.
    free = free.length > p.workers ? free.sort((a, b) => a - b).slice(0, p.workers) : [...free, ...Array(p.workers - free.length).fill(t)];
    for (const end = t + p.ms; t < end; t += step) {
      complete(t, phase);
      if (!slots.tryAcquire()) {
        phase.shed++;
        continue;
      }
      phase.admitted++;
      let w = 0;
      for (let k = 1; k < free.length; k++) if (free[k]! < free[w]!) w = k;
      const start = Math.max(t, free[w]!);
      const done = start + opts.serviceMs * (0.9 + 0.2 * random());
      free[w] = done;
      completions.push({ at: done, latency: done - t });
    }
    phase.endLimit = slots.max;
  });
  const p99 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.99)] ?? NaN;
  return { phases: results.map((r) => ({ ...r, p99: p99(r.latencies) })), changes };
}

describe('adaptive limit on a simulated upstream whose capacity halves, then comes back', () => {
  // 40 workers × 50 ms = 800 req/s, then 400; 600 req/s arrive.
  const phases = [
    { ms: 20_000, workers: 40 },
    { ms: 20_000, workers: 20 },
    { ms: 20_000, workers: 40 },
  ];
  const load = { ratePerS: 600, serviceMs: 50 };

  test('without a limit that adapts, the upstream queue grows until the 1024 slots of maxRequests are full: latency of seconds', () => {
    const none = simulate(null, phases, load);
    expect(none.phases[1]!.p99).toBeGreaterThan(2_000);
  });

  for (const algorithm of ['gradient2', 'vegas'] as const) {
    test(`${algorithm}: the limit drops when latency rises, sheds the excess as OVERLOADED, keeps latency bounded, and rises back`, () => {
      const config = algorithm === 'gradient2' ? gradient2({ minLimit: 5 }) : vegas({ minLimit: 5, maxLimit: 200 });
      const { phases: [full, half, back], changes } = simulate(config, phases, load);
      // Full capacity: almost nothing shed.
      expect(full!.shed / (full!.admitted + full!.shed)).toBeLessThan(0.02);
      // Half capacity: the limit falls below where it was, the excess (a third) is shed, latency stays within a few service times.
      expect(half!.endLimit).toBeLessThan(full!.endLimit);
      expect(half!.shed / (half!.admitted + half!.shed)).toBeGreaterThan(0.2);
      expect(half!.p99).toBeLessThan(400);
      expect(half!.admitted / 20).toBeGreaterThan(0.85 * 400); // goodput close to capacity
      // Capacity back: the limit rises again, shedding stops.
      expect(back!.endLimit).toBeGreaterThan(half!.endLimit);
      expect(back!.p99).toBeLessThan(200);
      for (const p of [full!, half!, back!]) {
        expect(p.minLimit).toBeGreaterThanOrEqual(5);
        expect(p.maxLimit).toBeLessThanOrEqual(algorithm === 'gradient2' ? 200 : 200);
      }
      expect(changes.length).toBeGreaterThan(2);
    });
  }
});

describe('adaptive limit through the mesh (a real backend, latency set by an injected clock)', () => {
  let backend: Backend;
  let mesh: Mesh | null = null;
  afterEach(async () => {
    await mesh?.close();
    mesh = null;
    await backend.close();
  });

  test('the service learns its limit from attempt latencies; over the limit requests fail with OVERLOADED; stats and events show it', async () => {
    backend = await startBackend('b');
    const held: ServerResponse[] = [];
    let arrived: (() => void) | null = null;
    let want = 0;
    backend.handler = (req, res) => {
      req.resume();
      held.push(res);
      if (held.length >= want) arrived?.();
    };
    let t = 0;
    mesh = createMesh({
      services: { api: { endpoints: [backend.url], retry: false, limits: { maxPendingRequests: 0, adaptive: { algorithm: 'gradient2', initialLimit: 4, minLimit: 2, maxLimit: 8, queueSize: 1, windowMs: 0 } } } },
      now: () => t,
    });
    const m = mesh;
    const limits: { limit: number; previous: number }[] = [];
    m.on('concurrency-limit', (e) => limits.push(e));
    const overloaded: string[] = [];
    m.on('overloaded', (e) => overloaded.push(e.limit));
    const get = () =>
      request('http://api/', { dispatcher: m.dispatcher }).then(
        async (r) => (await r.body.dump(), r.statusCode),
        (e: { code?: string }) => e.code,
      );
    const limit = () => m.stats().services.api!.concurrencyLimit;
    /** `k` requests at once, answered `latencyMs` (on the mesh's clock) after they arrived. */
    async function round(k: number, latencyMs: number): Promise<unknown[]> {
      held.length = 0;
      want = k;
      const reached = new Promise<void>((r) => (arrived = r));
      const results = Array.from({ length: k }, get);
      await reached;
      t += latencyMs;
      for (const res of held.splice(0)) res.end('ok');
      return Promise.all(results);
    }

    expect(limit()).toBe(4);
    // Four in flight fill the limit: a fifth is refused at once.
    held.length = 0;
    want = 4;
    const reached = new Promise<void>((r) => (arrived = r));
    const four = Array.from({ length: 4 }, get);
    await reached;
    expect(await get()).toBe('OVERLOADED');
    expect(overloaded).toEqual(['maxPendingRequests']);
    t += 10;
    for (const res of held.splice(0)) res.end('ok');
    expect(await Promise.all(four)).toEqual([200, 200, 200, 200]);

    const seen: number[] = [];
    for (let i = 0; i < 8; i++) (await round(limit(), 10), seen.push(limit()));
    const fast = limit();
    expect(fast).toBe(8);
    for (let i = 0; i < 8; i++) (await round(limit(), 200), seen.push(limit()));
    const slow = limit();
    expect(slow).toBeLessThan(fast);
    for (let i = 0; i < 20; i++) (await round(limit(), 10), seen.push(limit()));
    expect(limit()).toBeGreaterThan(slow);
    expect(Math.min(...seen)).toBeGreaterThanOrEqual(2);
    expect(Math.max(...seen)).toBeLessThanOrEqual(8);
    expect(limits.some((e) => e.limit > e.previous)).toBe(true);
    expect(limits.some((e) => e.limit < e.previous)).toBe(true);
    expect(m.stats().services.api).toMatchObject({ overloaded: 1, inFlight: 0 });
    expect(m.toJSON().services.api!.limits).toMatchObject({ adaptive: { algorithm: 'gradient2', initialLimit: 4, minLimit: 2, maxLimit: 8 } });
  });
});
