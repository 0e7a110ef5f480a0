/**
 * `round-robin`: smooth weighted round robin, as nginx does it (ngx_http_upstream_round_robin.c,
 * `ngx_http_upstream_get_peer`): every pick, each endpoint's current weight grows by its weight,
 * the largest wins and pays back the total. Weights 5:1:1 give `a a b a c a a` — interleaved,
 * never a burst of five.
 *
 * The sequence repeats every Σweight/gcd picks, so when that period is small (≤ 65,536, and cheap
 * to compute) it is computed once, at build time, and a pick is one array read. Larger periods run
 * the O(n) step per pick. Equal weights reduce to a plain rotation. The cursor starts at a random offset so
 * processes that rebuild together do not march in step. The cursor is the schedule picker's one
 * mutable field (the smooth picker, for larger periods, updates its current weights per pick).
 */
import type { Endpoint } from '../core/endpoint.js';
import type { BalancerDefinition, PickContext, Picker, PickResult, BalancerDeps } from './balancer.js';
import { rejectUnknown } from '../config/check.js';

const MAX_SCHEDULE = 65_536;
/** Most work (period × endpoints) spent building a schedule. */
const MAX_BUILD_STEPS = 4_000_000;

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Build the smooth-WRR schedule for `weights` (already divided by their gcd), of length Σweights. */
export function smoothSchedule(weights: readonly number[]): number[] {
  const total = weights.reduce((a, b) => a + b, 0);
  const current = new Array<number>(weights.length).fill(0);
  const out = new Array<number>(total);
  for (let step = 0; step < total; step++) {
    let best = 0;
    for (let i = 0; i < weights.length; i++) {
      current[i]! += weights[i]!;
      if (current[i]! > current[best]!) best = i;
    }
    current[best]! -= total;
    out[step] = best;
  }
  return out;
}

class SchedulePicker implements Picker {
  readonly #endpoints: readonly Endpoint[];
  readonly #schedule: Uint32Array;
  readonly #fail: PickResult;
  /** Position in the schedule: the one mutable field. */
  #cursor: number;

  constructor(endpoints: readonly Endpoint[], schedule: Uint32Array, deps: BalancerDeps) {
    this.#endpoints = endpoints;
    this.#schedule = schedule;
    this.#fail = deps.noEndpoint;
    this.#cursor = Math.floor(deps.random() * schedule.length);
  }

  pick(ctx: PickContext): PickResult {
    const schedule = this.#schedule;
    const n = schedule.length;
    for (let tries = 0; tries < n; tries++) {
      const e = this.#endpoints[schedule[this.#cursor]!]!;
      this.#cursor = this.#cursor + 1 === n ? 0 : this.#cursor + 1;
      if (!ctx.skip(e)) return e.picked;
    }
    return this.#fail;
  }
}

class SmoothPicker implements Picker {
  readonly #endpoints: readonly Endpoint[];
  readonly #weights: Float64Array;
  readonly #current: Float64Array;
  readonly #fail: PickResult;

  constructor(endpoints: readonly Endpoint[], deps: BalancerDeps) {
    this.#endpoints = endpoints;
    this.#weights = Float64Array.from(endpoints, (e) => e.weight);
    this.#current = new Float64Array(endpoints.length);
    this.#fail = deps.noEndpoint;
    // Random phase: advance a random number of steps (bounded) so processes differ.
    const warm = Math.floor(deps.random() * Math.min(endpoints.length, 1024));
    for (let i = 0; i < warm; i++) this.#step(null);
  }

  #step(ctx: PickContext | null): Endpoint | undefined {
    const w = this.#weights;
    const c = this.#current;
    let best = -1;
    let total = 0;
    for (let i = 0; i < w.length; i++) {
      if (ctx !== null && ctx.skip(this.#endpoints[i]!)) continue;
      c[i]! += w[i]!;
      total += w[i]!;
      if (best < 0 || c[i]! > c[best]!) best = i;
    }
    if (best < 0) return undefined;
    c[best]! -= total;
    return this.#endpoints[best];
  }

  pick(ctx: PickContext): PickResult {
    const e = this.#step(ctx);
    return e === undefined ? this.#fail : e.picked;
  }
}

export const roundRobin: BalancerDefinition<Record<string, never>> = {
  create(endpoints, _options, deps) {
    const g = endpoints.reduce((acc, e) => gcd(acc, e.weight), 0);
    const weights = endpoints.map((e) => e.weight / g);
    const period = weights.reduce((a, b) => a + b, 0);
    if (period === endpoints.length) {
      // Equal weights: the schedule is a plain rotation.
      return new SchedulePicker(endpoints, Uint32Array.from(endpoints, (_, i) => i), deps);
    }
    if (period <= MAX_SCHEDULE && period * endpoints.length <= MAX_BUILD_STEPS) {
      return new SchedulePicker(endpoints, Uint32Array.from(smoothSchedule(weights)), deps);
    }
    return new SmoothPicker(endpoints, deps);
  },
  parseOptions(raw, path) {
    rejectUnknown(raw, [], path);
    return {};
  },
};
