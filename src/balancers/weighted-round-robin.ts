/**
 * `weighted-round-robin`: round robin weighted by the load each endpoint reports about itself
 * (ORCA load reports in response headers, load/orca.ts) — gRPC A58 `weighted_round_robin` and
 * Envoy's `client_side_weighted_round_robin`, with their defaults.
 *
 *  1. Weight of an endpoint, from its latest report with qps > 0 and utilization > 0:
 *     `qps / (utilization + eps / qps × errorUtilizationPenalty)`, where utilization is
 *     `application_utilization` when > 0, else `cpu_utilization`, and qps is `rps_fractional`.
 *  2. A weight is used only once the endpoint has reported for `blackoutPeriodMs` without a break
 *     (10 s), and only while its last report is younger than `weightExpirationPeriodMs` (3 min);
 *     an expired weight starts a new blackout when reports come back.
 *  3. Endpoints without a usable weight get the mean of the usable ones (A58; Envoy takes the
 *     median). With fewer than two usable weights, every endpoint weighs the same: plain round
 *     robin. Usable weights are bounded to [mean / 100, mean × 10], as gRPC's scheduler bounds
 *     them (static_stride_scheduler.cc: kMinRatio 0.01, kMaxRatio 10): one extreme report —
 *     `cpu_utilization:1e-320` makes qps / utilization overflow to Infinity — can neither take
 *     every pick (the others keep at least a hundredth of the mean each) nor starve an endpoint.
 *  4. Picks follow an earliest-deadline-first schedule: each endpoint's period is mean / weight, its
 *     first deadline random in [0, period] so processes do not march in step; a pick takes the
 *     earliest deadline and moves it one period on.
 *
 * Weights are recomputed every `weightUpdatePeriodMs` (1 s). A58 swaps in a new scheduler from a
 * timer; here the picker — an immutable snapshot of the endpoint set, rebuilt by the service on
 * every endpoint or health change (balancer.ts) — recomputes on the first pick after the period
 * ran out (O(n), at most once a period), so it owns no timer to clean up. A pick is a clock read
 * and a heap step, O(log n), with no allocation. Discovery weights (`endpoint.weight`) are not
 * used: the reports replace them, as in Envoy.
 */
import type { Endpoint } from '../core/endpoint.js';
import type { EndpointLoad } from '../load/endpoint-load.js';
import type { BalancerDefinition, BalancerDeps, PickContext, Picker, PickResult } from './balancer.js';
import { checkNumber, rejectUnknown } from '../config/check.js';
import { optDurationMs } from '../config/duration.js';

export interface WeightedRoundRobinOptions {
  /** How long an endpoint must report without a break before its weight is used, ms. @default 10000 */
  readonly blackoutPeriodMs: number;
  /** A weight whose last report is this old is dropped, ms. @default 180000 */
  readonly weightExpirationPeriodMs: number;
  /** How often weights are recomputed, ms, ≥ 100. @default 1000 */
  readonly weightUpdatePeriodMs: number;
  /** Multiplier of the error rate (eps / qps) added to utilization, ≥ 0. @default 1 */
  readonly errorUtilizationPenalty: number;
}

const DEFAULTS: WeightedRoundRobinOptions = Object.freeze({
  blackoutPeriodMs: 10_000,
  weightExpirationPeriodMs: 180_000,
  weightUpdatePeriodMs: 1_000,
  errorUtilizationPenalty: 1,
});

/** The weight `load` has now under `o` (step 1–2), or 0 when it has none. */
export function reportedWeight(load: EndpointLoad, nowMs: number, o: WeightedRoundRobinOptions): number {
  const r = load.weightReport;
  if (r === null) return 0;
  if (nowMs - r.atMs >= o.weightExpirationPeriodMs) {
    load.restartWeightReports();
    return 0;
  }
  const since = load.weightReportsSinceMs;
  if (o.blackoutPeriodMs > 0 && (Number.isNaN(since) || nowMs - since < o.blackoutPeriodMs)) return 0;
  // A tiny but valid utilization overflows the quotient to Infinity: keep every weight finite.
  return Math.min(r.qps / (r.utilization + (r.eps / r.qps) * o.errorUtilizationPenalty), Number.MAX_VALUE);
}

/** gRPC's bounds on a usable weight, relative to the mean of the usable ones. */
const MIN_RATIO = 0.01;
const MAX_RATIO = 10;

class WeightedRoundRobinPicker implements Picker {
  readonly #endpoints: readonly Endpoint[];
  readonly #options: WeightedRoundRobinOptions;
  readonly #deps: BalancerDeps;
  readonly #period: Float64Array;
  readonly #deadline: Float64Array;
  /** A binary min-heap of endpoint indices by deadline. */
  readonly #heap: Uint32Array;
  /** When weights were last computed; the schedule's one other mutable state is the heap. */
  #updatedMs = -Infinity;

  constructor(endpoints: readonly Endpoint[], options: WeightedRoundRobinOptions, deps: BalancerDeps) {
    const n = endpoints.length;
    this.#endpoints = endpoints;
    this.#options = options;
    this.#deps = deps;
    this.#period = new Float64Array(n);
    this.#deadline = new Float64Array(n);
    this.#heap = Uint32Array.from(endpoints, (_, i) => i);
  }

  pick(ctx: PickContext): PickResult {
    const t = ctx.nowMs;
    const now = t === undefined ? this.#deps.now() : t;
    if (now - this.#updatedMs >= this.#options.weightUpdatePeriodMs) this.#update(now);
    const heap = this.#heap;
    for (let tries = 0; tries < heap.length; tries++) {
      const i = heap[0]!;
      this.#deadline[i]! += this.#period[i]!;
      this.#siftDown(0);
      const e = this.#endpoints[i]!;
      if (!ctx.skip(e)) return e.picked;
    }
    return this.#deps.noEndpoint;
  }

  /** Recompute every weight (steps 1–3) and start a new schedule (step 4). */
  #update(now: number): void {
    this.#updatedMs = now;
    const eps = this.#endpoints;
    const period = this.#period;
    let max = 0;
    let usable = 0;
    for (let i = 0; i < eps.length; i++) {
      const w = reportedWeight(eps[i]!.load, now, this.#options);
      period[i] = w;
      if (w > 0) {
        max = Math.max(max, w);
        usable++;
      }
    }
    // Weights relative to the largest, in (0, 1], so their mean (≥ 1 / usable) can neither
    // overflow (two weights near Number.MAX_VALUE) nor round to 0 (weights near 5e-324).
    let mean = 1;
    if (usable >= 2) {
      let sum = 0;
      for (let i = 0; i < eps.length; i++) if (period[i]! > 0) sum += period[i]! / max;
      mean = sum / usable;
    }
    const random = this.#deps.random;
    for (let i = 0; i < eps.length; i++) {
      // Each weight as a multiple of the mean, bounded: a period in [0.1, 100], whatever was reported.
      const ratio = usable >= 2 && period[i]! > 0 ? Math.min(MAX_RATIO, Math.max(MIN_RATIO, period[i]! / max / mean)) : 1;
      period[i] = 1 / ratio;
      this.#deadline[i] = random() * period[i]!;
      this.#heap[i] = i;
    }
    for (let i = (eps.length >> 1) - 1; i >= 0; i--) this.#siftDown(i);
  }

  #siftDown(at: number): void {
    const heap = this.#heap;
    const d = this.#deadline;
    const n = heap.length;
    const item = heap[at]!;
    const key = d[item]!;
    let i = at;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      let child = heap[c]!;
      let cd = d[child]!;
      const r = c + 1;
      if (r < n) {
        const right = heap[r]!;
        const rd = d[right]!;
        // Ties go to the lower index, so equal weights keep a stable order.
        if (rd < cd || (rd === cd && right < child)) {
          c = r;
          child = right;
          cd = rd;
        }
      }
      if (cd > key || (cd === key && child > item)) break;
      heap[i] = child;
      i = c;
    }
    heap[i] = item;
  }
}

export const weightedRoundRobin: BalancerDefinition<WeightedRoundRobinOptions> = {
  create: (endpoints, options, deps) => new WeightedRoundRobinPicker(endpoints, options, deps),
  usesLoadReports: true,
  parseOptions(raw, path) {
    rejectUnknown(raw, Object.keys(DEFAULTS), path);
    const hour = 3_600_000;
    const penalty = raw.errorUtilizationPenalty;
    return Object.freeze({
      blackoutPeriodMs: optDurationMs(raw, 'blackoutPeriodMs', path, DEFAULTS.blackoutPeriodMs, { min: 0, max: hour }),
      weightExpirationPeriodMs: optDurationMs(raw, 'weightExpirationPeriodMs', path, DEFAULTS.weightExpirationPeriodMs, { min: 1, max: 24 * hour }),
      // A58 raises a smaller period to 100 ms; here it is an error rather than a silent change.
      weightUpdatePeriodMs: optDurationMs(raw, 'weightUpdatePeriodMs', path, DEFAULTS.weightUpdatePeriodMs, { min: 100, max: hour }),
      errorUtilizationPenalty: penalty === undefined ? DEFAULTS.errorUtilizationPenalty : checkNumber(penalty, `${path}.errorUtilizationPenalty`, { min: 0, max: 1e6 }),
    });
  },
  toJSON: (o) => ({ ...o }),
};
