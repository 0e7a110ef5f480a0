/**
 * A closed-loop load simulation in virtual time, for balancer tests that must not depend on the
 * machine: `concurrency` callers each send their next request when the previous one is answered,
 * to replicas whose service time is their `latencyMs` ± 20 %. The caller's process stalls now and
 * then (Poisson arrivals, exponential durations — GC, event-loop lag, a busy core): answers that
 * arrive during a stall are seen when it ends, and each answer costs the caller `costMs` to handle,
 * one at a time — so, as on a real machine, a stall inflates every answer in flight at once. What
 * the caller measures (sent → seen) is what the balancer is fed and what the percentiles are of.
 * Optionally the load pauses (`onMs` on, `offMs` off), as when contenders alternate.
 */
import type { Dispatcher } from 'undici';
import { Endpoint } from '../../src/core/endpoint.js';
import { EndpointLoad } from '../../src/load/endpoint-load.js';
import { parseEndpointSpec } from '../../src/core/endpoint-spec.js';
import type { BalancerDefinition } from '../../src/balancers/balancer.js';
import { build, ctx, deps } from './endpoints.js';
import { seeded } from './seeded.js';

export interface LoopOptions {
  concurrency: number;
  /** Virtual seconds measured (after 1 s unmeasured). */
  seconds?: number;
  /** Stalls per second, and their mean length in ms. @default 20, 8 */
  stallsPerSecond?: number;
  stallMeanMs?: number;
  /** Caller's cost to handle one answer, ms. @default 0.03 */
  costMs?: number;
  onMs?: number;
  offMs?: number;
  seed?: number;
}

export interface LoopResult {
  p50Ms: number;
  p99Ms: number;
  /** Share of requests each replica got. */
  shares: number[];
}

interface Answer {
  at: number;
  worker: number;
  endpoint: Endpoint | null; // null: a paused worker resuming
  sentAt: number;
  rif: number;
}

/** Run `balancer` over replicas answering in `latencyMs` (one entry each). Deterministic for a seed. */
export function closedLoop(balancer: BalancerDefinition<any>, latencyMs: readonly number[], o: LoopOptions): LoopResult {
  const rnd = seeded(o.seed ?? 1);
  const start = 1000;
  const end = start + 1000 + (o.seconds ?? 10) * 1000;
  const cost = o.costMs ?? 0.03;
  const stalls: number[] = []; // [from, to, from, to, …]
  for (let t = start; t < end + 5000; ) {
    t += (-Math.log(1 - rnd()) * 1000) / (o.stallsPerSecond ?? 20);
    stalls.push(t, t - Math.log(1 - rnd()) * (o.stallMeanMs ?? 8));
  }
  const shared = { inFlight: 0, recentLatency: true };
  const eps = latencyMs.map((_, i) => new Endpoint(parseEndpointSpec({ url: `http://127.0.1.${i + 1}:80` }, 't'), {} as Dispatcher, new EndpointLoad(300, shared)));
  let now = start;
  const picker = build(balancer, eps, deps(seeded(7), () => now));
  const c = ctx();
  const queue: Answer[] = [];
  const push = (a: Answer): void => {
    let i = queue.length;
    queue.push(a);
    while (i > 0 && queue[i - 1]!.at > a.at) {
      queue[i] = queue[i - 1]!;
      i--;
    }
    queue[i] = a;
  };
  const counts = eps.map(() => 0);
  const measured: number[] = [];
  const send = (worker: number): void => {
    const r = picker.pick(c);
    if (r.type !== 'pick') throw new Error('closed loop: no endpoint picked');
    const i = eps.indexOf(r.endpoint);
    counts[i]!++;
    const rif = r.endpoint.load.start(now);
    push({ at: now + latencyMs[i]! * (0.8 + 0.4 * rnd()), worker, endpoint: r.endpoint, sentAt: now, rif });
  };
  for (let w = 0; w < o.concurrency; w++) send(w);
  let free = start;
  let s = 0;
  for (let a = queue.shift(); a !== undefined; a = queue.shift()) {
    if (a.endpoint === null) {
      now = Math.max(now, a.at);
      if (now < end) send(a.worker);
      continue;
    }
    let t = Math.max(a.at, free);
    while (s < stalls.length && stalls[s + 1]! < t) s += 2;
    if (s < stalls.length && stalls[s]! <= t) t = stalls[s + 1]!;
    now = free = t + cost;
    const ms = now - a.sentAt;
    a.endpoint.load.observeLatency(ms, now, a.rif);
    a.endpoint.load.end(false);
    if (now > start + 1000) measured.push(ms);
    if (now >= end) continue;
    const cycle = (o.onMs ?? 0) + (o.offMs ?? 0);
    const phase = cycle > 0 ? (now - start) % cycle : 0;
    if (cycle > 0 && phase >= o.onMs!) push({ at: now + cycle - phase, worker: a.worker, endpoint: null, sentAt: 0, rif: 0 });
    else send(a.worker);
  }
  measured.sort((x, y) => x - y);
  const total = counts.reduce((x, y) => x + y, 0);
  return {
    p50Ms: measured[Math.floor(measured.length * 0.5)]!,
    p99Ms: measured[Math.floor(measured.length * 0.99)]!,
    shares: counts.map((k) => k / total),
  };
}
