import { describe, expect, test } from 'vitest';
import { prequal, MAX_IDLE_MS } from '../../src/balancers/prequal.js';
import { peakEwma } from '../../src/balancers/peak-ewma.js';
import type { Endpoint } from '../../src/core/endpoint.js';
import type { Picker } from '../../src/balancers/balancer.js';
import { build, counts, ctx, deps, endpoints } from '../support/endpoints.js';
import { seeded, tolerance } from '../support/seeded.js';

/** Give `e` a latency sample of `ms` taken at `rif` in flight, at `now`, and leave `rif` in flight. */
function load(e: Endpoint, ms: number, rif: number, now: number): void {
  e.load.observeLatency(ms, now, rif);
  e.load.inFlight = rif;
}

const picked = (p: Picker, c = ctx()): Endpoint => {
  const r = p.pick(c);
  if (r.type !== 'pick') throw new Error('no endpoint picked');
  return r.endpoint;
};

describe('prequal: hot-cold lexicographic choice', () => {
  test('an idle slow replica loses to busy fast ones (the trap peak-ewma falls into)', () => {
    const now = 5000;
    const eps = endpoints([1, 1, 1, 1, 1]);
    load(eps[0]!, 10, 0, now); // idle, 10 ms
    for (const e of eps.slice(1)) load(e, 1.5, 8, now); // 8 in flight each, 1.5 ms
    const c = counts(build(prequal, eps, deps(seeded(1), () => now)), eps, 2000);
    expect(c[0]).toBe(0);
    for (const k of c.slice(1)) expect(k).toBeGreaterThan(0);
    // Peak EWMA's cost, 10 × (0 + 1) < 1.5 × (8 + 1), sends the slow replica every pick it samples.
    expect(counts(build(peakEwma, eps, deps(seeded(1), () => now)), eps, 2000)[0]).toBeGreaterThan(600);
  });

  test('a hot replica (RIF above the 0.84 quantile) is passed over even when it is the fastest, unless the cold ones are over 4× slower', () => {
    const now = 5000;
    const eps = endpoints([1, 1, 1, 1, 1]);
    load(eps[0]!, 1, 10, now);
    for (const e of eps.slice(1)) load(e, 3, 0, now);
    let c = counts(build(prequal, eps, deps(seeded(2), () => now)), eps, 2000);
    expect(c[0]).toBe(0);
    // The four cold ones tie on latency: the scan's rotating start shares the ties evenly.
    for (const k of c.slice(1)) expect(k).toBe(500);
    const slower = endpoints([1, 1, 1, 1, 1]);
    load(slower[0]!, 1, 10, now);
    for (const e of slower.slice(1)) load(e, 5, 0, now); // 5× slower than the hot one
    expect(counts(build(prequal, slower, deps(seeded(2), () => now)), slower, 100)[0]).toBe(100);
  });

  test('among cold replicas, the lowest latency at the current RIF wins', () => {
    const now = 5000;
    const eps = endpoints([1, 1, 1, 1, 1]);
    [3, 2, 4, 2.5, 6].forEach((ms, i) => load(eps[i]!, ms, 2, now));
    const p = build(prequal, eps, deps(seeded(3), () => now));
    expect(counts(p, eps, 500)).toEqual([0, 500, 0, 0, 0]);
    // The estimate read is the one for the RIF the replica has now: eps[1] is fast at 2 in
    // flight but measured slow at 8; at 8 in flight it loses to eps[3].
    load(eps[1]!, 9, 8, now);
    for (let i = 0; i < 10; i++) load(eps[1]!, 9, 8, now);
    eps[1]!.load.inFlight = 8;
    for (const e of [eps[0]!, eps[2]!, eps[3]!, eps[4]!]) e.load.inFlight = 8;
    expect(counts(p, eps, 500)).toEqual([0, 0, 0, 500, 0]);
  });

  test('among cold replicas whose latencies are within 1.5×, fewer requests in flight break the near-tie (a healthy fleet is shared)', () => {
    const now = 5000;
    const eps = endpoints([1, 1, 1, 1, 1]);
    load(eps[0]!, 1.0, 2, now); // the fastest by a hair, but busier
    load(eps[1]!, 1.05, 2, now);
    load(eps[2]!, 1.1, 0, now); // idle, 10 % slower: it wins the near-tie
    load(eps[3]!, 1.6, 0, now); // idle, but over 1.5× slower: never
    load(eps[4]!, 1.0, 3, now); // the busiest: hot
    // RIFs [2, 2, 0, 0, 3]: threshold 2 + 0.36 = 2.36 (cap 3.8). Scores: 1.0 × (1 + ½ · 2 / 3.36)
    // = 1.30, 1.05 × 1.30 = 1.36, 1.1, 1.6, and 1.0 × 4 = 4.
    expect(counts(build(prequal, eps, deps(seeded(14), () => now)), eps, 100)).toEqual([0, 0, 100, 0, 0]);
    eps[2]!.load.inFlight = 2; // at equal RIF the lower latency wins: 1.0 × 1.30 < 1.05 × 1.30 < 1.1 × 1.30
    expect(counts(build(prequal, eps, deps(seeded(14), () => now)), eps, 100)).toEqual([100, 0, 0, 0, 0]);
  });

  /** 12 endpoints (sampled: 11 of them per pick) whose recent RIFs were all 0, so the hot threshold is 0. */
  function coldHistory(seed: number, now: number): { eps: Endpoint[]; p: Picker } {
    const eps = endpoints(Array.from({ length: 12 }, () => 1));
    for (const e of eps) load(e, 1, 0, now);
    const p = build(prequal, eps, deps(seeded(seed), () => now), { choiceCount: 11 });
    for (let i = 0; i < 4; i++) picked(p);
    return { eps, p };
  }

  test('when every candidate is hot, the lowest cost wins: with equal latencies, the fewest in flight', () => {
    for (let seed = 20; seed < 30; seed++) {
      const now = 5000;
      const { eps, p } = coldHistory(seed, now);
      eps.forEach((e, i) => load(e, 2, i + 1, now)); // all hot now; the threshold has not caught up yet
      // 11 of 12 sampled: eps[0] unless it was left out, then eps[1].
      expect([eps[0], eps[1]]).toContain(picked(p));
    }
  });

  test('a hot fast replica beats a cold one over 4× slower (a strict hot-cold rule would not)', () => {
    for (let seed = 30; seed < 40; seed++) {
      const now = 5000;
      const { eps, p } = coldHistory(seed, now);
      eps[0]!.load.observeLatency(300, now, 0, true); // idle, cold: its requests time out at 300 ms
      for (const e of eps.slice(1)) load(e, 4, 2, now); // 2 in flight: hot; 4 ms × 4 = 16 ms < 300 ms
      expect(picked(p)).not.toBe(eps[0]);
    }
  });

  test('never returns a skipped endpoint; fails when every endpoint is skipped (full scan and sampled)', () => {
    const now = 5000;
    const few = endpoints([1, 1, 1, 1, 1]);
    [3, 2, 4, 2.5, 6].forEach((ms, i) => load(few[i]!, ms, 1, now));
    const p = build(prequal, few, deps(seeded(5), () => now));
    for (let i = 0; i < 200; i++) expect(picked(p, ctx({ skip: [few[1]!] }))).toBe(few[3]);
    expect(p.pick(ctx({ skip: few }))).toMatchObject({ type: 'fail' });

    const many = endpoints(Array.from({ length: 20 }, () => 1));
    for (const e of many) load(e, 1, 0, now);
    const q = build(prequal, many, deps(seeded(6), () => now));
    const skip = many.slice(1);
    for (let i = 0; i < 200; i++) expect(picked(q, ctx({ skip }))).toBe(many[0]);
    expect(q.pick(ctx({ skip: many }))).toMatchObject({ type: 'fail' });
  });

  test('in a large fleet, candidates are sampled by weight', () => {
    const eps = endpoints([...Array.from({ length: 19 }, () => 1), 19]); // the last holds half the weight
    const n = 20_000;
    // Never sampled: every candidate is a probe, the first sampled wins — the weighted draw.
    const c = counts(build(prequal, eps, deps(seeded(7), () => 0)), eps, n);
    expect(Math.abs(c[19]! - n / 2)).toBeLessThanOrEqual(tolerance(n, 0.5));
  });
});

describe('prequal: probes, recovery, fresh endpoints', () => {
  test('a slow replica is probed rarely, and a recovered one is probed within MAX_IDLE_MS and gets its share back', () => {
    let now = 0;
    const eps = endpoints([1, 1, 1, 1, 1]);
    const latency = [10, 1, 1, 1, 1];
    const p = build(prequal, eps, deps(seeded(8), () => now));
    const run = (ms: number): number[] => {
      // One request per ms, answered at once with its replica's latency (so the RIF stays 0).
      const seen: number[] = [];
      for (let t = 0; t < ms; t++, now++) {
        const e = picked(p);
        const i = eps.indexOf(e);
        e.load.observeLatency(latency[i]!, now, 0);
        if (i === 0) seen.push(now);
      }
      return seen;
    };
    const slow = run(30_000);
    // The first pick of each, then a probe about every MAX_IDLE_MS: 10 ms × 1 s / age < 1 ms only then.
    expect(slow.length).toBeGreaterThanOrEqual(3);
    expect(slow.length).toBeLessThanOrEqual(4);
    const last = slow.at(-1)!;
    latency[0] = 1; // it recovers
    const after = run(12_000);
    expect(after.length).toBeGreaterThan(0);
    expect(after[0]! - last).toBeLessThanOrEqual(MAX_IDLE_MS + 1);
    // From its first fast answer on it is one of five equals again.
    const lastSecond = after.filter((t) => t >= now - 1000).length;
    expect(lastSecond).toBe(200);
  });

  test('a probe is one request: a replica whose decayed estimate undercuts the others gets one, not a burst', () => {
    let now = 0;
    const eps = endpoints([1, 1, 1, 1, 1]);
    load(eps[0]!, 1.4, 0, now);
    now = 2000; // 1.4 ms × √(1 s / 2 s) ≈ 0.99 ms < 1.2 ms
    for (const e of eps.slice(1)) load(e, 1.2, 0, now);
    const p = build(prequal, eps, deps(seeded(13), () => now));
    expect(picked(p)).toBe(eps[0]);
    eps[0]!.load.start(now); // in flight: its unconfirmed estimate now counts × (RIF + 1)
    expect(counts(p, eps, 400)[0]).toBe(0);
  });

  test('a new endpoint gets one request, not a burst, until it answers', () => {
    const now = 5000;
    const eps = endpoints([1, 1, 1, 1]);
    for (const e of eps.slice(0, 3)) load(e, 2, 1, now);
    const p = build(prequal, eps, deps(seeded(9), () => now));
    expect(picked(p)).toBe(eps[3]); // never sampled: probed first
    eps[3]!.load.start(now); // the probe is in flight, unanswered
    expect(counts(p, eps, 300)[3]).toBe(0);
    eps[3]!.load.observeLatency(1, now, 0); // it answers fast
    eps[3]!.load.end(false);
    expect(counts(p, eps, 300)[3]).toBe(300);
  });

  test('after a quiet second, a burst still avoids the slow replica (busy fast ones keep their decayed estimates)', () => {
    let now = 5000;
    const eps = endpoints([1, 1, 1, 1, 1]);
    load(eps[0]!, 10, 0, now);
    for (const e of eps.slice(1)) load(e, 1, 0, now);
    const p = build(prequal, eps, deps(seeded(12), () => now));
    now += 1500; // nothing for 1.5 s: no estimate is current
    // A burst of 12: each pick starts a request that has not answered yet.
    const burst = Array.from({ length: 12 }, () => {
      const e = picked(p);
      e.load.start(now);
      return eps.indexOf(e);
    });
    expect(burst).not.toContain(0);
    // One stuck for over a second is another matter: it is passed over until it answers.
    now += 1001;
    expect(counts(p, eps, 100)[0]).toBe(100);
  });

  test('a replica answering fast with 5xx does not attract the traffic', () => {
    const now = 5000;
    const eps = endpoints([1, 1, 1]);
    load(eps[0]!, 2, 0, now);
    load(eps[1]!, 2, 0, now);
    eps[2]!.load.observeLatency(0.2, now, 0, true); // a fast 503
    expect(counts(build(prequal, eps, deps(seeded(10), () => now)), eps, 300)[2]).toBe(0);
  });
});

describe('prequal: cost and config', () => {
  test('pick allocates nothing (heap growth over 20,000 picks, median of 7 rounds)', () => {
    const now = 5000;
    for (const n of [5, 1000]) {
      const eps = endpoints(Array.from({ length: n }, (_, i) => 1 + (i % 3)));
      eps.forEach((e, i) => load(e, 1 + (i % 5), i % 7, now));
      const p = build(prequal, eps, deps(seeded(11), () => now));
      const c = ctx();
      const round = (): number => {
        const before = process.memoryUsage().heapUsed;
        for (let i = 0; i < 20_000; i++) p.pick(c);
        return process.memoryUsage().heapUsed - before;
      };
      for (let i = 0; i < 5; i++) round(); // warm up: optimised code, feedback allocated
      const growth = Array.from({ length: 7 }, round).sort((a, b) => a - b)[3]!;
      // 20,000 picks allocating even 16 bytes each would grow the heap by 320 KB.
      expect(growth, `${n} endpoints`).toBeLessThan(64 * 1024);
    }
  });

  test('options: defaults, and errors that name the field', () => {
    expect(prequal.parseOptions!({}, 'b')).toEqual({ choiceCount: 2, hotQuantile: 0.84, reportedRif: false });
    expect(prequal.parseOptions!({ choiceCount: 4, hotQuantile: 0.6 }, 'b')).toEqual({ choiceCount: 4, hotQuantile: 0.6, reportedRif: false });
    const eps = endpoints([1, 1]);
    expect(() => build(prequal, eps, deps(Math.random), { choiceCount: 1 })).toThrowError(/services\.t\.balancer\.choiceCount: expected an integer ≥ 2/);
    expect(() => build(prequal, eps, deps(Math.random), { hotQuantile: 1.2 })).toThrowError(/services\.t\.balancer\.hotQuantile: expected a number ≥ 0\.5 and ≤ 0\.99/);
    expect(() => build(prequal, eps, deps(Math.random), { decayMs: 300 })).toThrowError(/services\.t\.balancer\.decayMs: unknown field/);
  });
});
