/**
 * The hedge layer: a request still outstanding after the hedge delay gets a copy on another
 * endpoint; the first response wins, the other copies are cancelled, and the caller sees exactly
 * one response ("The Tail at Scale", Dean and Barroso 2013; gRPC A6 hedging; Envoy's
 * hedge_on_per_try_timeout). The policy is in hedge-config.ts.
 *
 * Per request, a sink (HedgeRun, hedge-run.ts: the races, who wins, what is cancelled) wrapped
 * around the retry layer's: it sits between retry and pick, so each retry starts a new race. Only
 * idempotent methods are hedged unless the policy allows others; upgrades and CONNECT never are.
 * The adaptive delay reads a percentile of the latencies of this layer's attempts
 * (load/latency-quantile.ts), cancelled copies counted at the time they ran, so hedging does not
 * hide the slow tail it is measured on. On when the service or a route configures `hedge`.
 */
import type { MeshEvents } from '../core/events.js';
import { LatencyQuantile } from '../load/latency-quantile.js';
import type { Call } from '../request/call.js';
import type { Layer, LayerStats, Next } from '../request/layer.js';
import { HEDGE_MIN_SAMPLES, HEDGE_WINDOW_MS, type ParsedHedge } from './hedge-config.js';
import { HedgeRun, type HedgePolicy, type HedgeRunLayer } from './hedge-run.js';
import { RetryBudget } from './retry-budget.js';
import { isIdempotent } from './retry-policy.js';

/** Hedge policies of one service: its own and its routes' (by route index; undefined inherits). */
export interface HedgePolicies {
  readonly service: ParsedHedge | null;
  readonly byRoute: readonly (ParsedHedge | null | undefined)[];
}

export class HedgeLayer implements Layer, HedgeRunLayer {
  readonly name = 'hedge';
  readonly service: string;
  readonly events: MeshEvents;
  readonly now: () => number;
  readonly #service: HedgePolicy | null;
  readonly #byRoute: readonly (HedgePolicy | null | undefined)[];
  readonly #budgets: RetryBudget[] = [];
  /** The service's recent latencies, when a policy hedges at a percentile. */
  readonly latencies: LatencyQuantile | null;
  hedges = 0;
  hedgesWon = 0;

  constructor(policies: HedgePolicies, deps: { service: string; events: MeshEvents; now: () => number }) {
    this.service = deps.service;
    this.events = deps.events;
    this.now = deps.now;
    const made = new Map<ParsedHedge, HedgePolicy>();
    const policy = (c: ParsedHedge | null | undefined): HedgePolicy | null | undefined => {
      if (c == null) return c;
      let p = made.get(c);
      if (p === undefined) {
        p = { config: c, budget: c.budget === null ? null : new RetryBudget(c.budget, deps.now) };
        if (p.budget !== null) this.#budgets.push(p.budget);
        made.set(c, p);
      }
      return p;
    };
    this.#service = policy(policies.service) ?? null;
    this.#byRoute = policies.byRoute.map(policy);
    const adaptive = [...made.keys()].some((c) => c.delayPercentile !== null);
    this.latencies = adaptive ? new LatencyQuantile(HEDGE_WINDOW_MS, HEDGE_MIN_SAMPLES, deps.now()) : null;
  }

  static needed(p: HedgePolicies): boolean {
    return p.service !== null || p.byRoute.some((h) => h != null);
  }

  handle(call: Call, next: Next): void {
    const sink = call.sink;
    if (sink instanceof HedgeRun) return sink.begin(); // a retry: a new race
    const byRoute = call.routeIndex >= 0 ? this.#byRoute[call.routeIndex] : undefined;
    const p = byRoute !== undefined ? byRoute : this.#service;
    if (p === null) return next(call);
    if (call.attempt === 0) p.budget?.onRequest(call.startMs);
    const method = call.opts.method;
    if (call.opts.upgrade || method === 'CONNECT' || (!isIdempotent(method) && !p.config.allowNonIdempotent)) return next(call);
    let fixedMs = p.config.delayMs;
    if (p.config.hedgeOnPerTryTimeout) {
      // Envoy's form: the per-try timeout sends a copy instead of cancelling the try.
      if (call.perTryTimeoutMs <= 0) return next(call);
      fixedMs = call.perTryTimeoutMs;
      call.perTryTimeoutMs = 0;
    }
    const run = new HedgeRun(this, p, call, next, fixedMs);
    call.sink = run;
    run.begin();
  }

  /** The delay before the next copy, ms; undefined: do not hedge (too few samples yet). */
  delayMs(config: ParsedHedge, fixedMs: number | null): number | undefined {
    if (fixedMs !== null) return fixedMs;
    const q = this.latencies!.percentile(config.delayPercentile!, this.now());
    // Whole ms, rounded up: timers have no finer grain, and a hedge must not go early.
    return q === undefined ? undefined : Math.ceil(Math.min(config.maxDelayMs, Math.max(config.minDelayMs, q)));
  }

  /** A latency (to response headers, or until cancelled) of one attempt that started at `startMs`. */
  sample(startMs: number): void {
    if (this.latencies === null) return;
    const now = this.now();
    this.latencies.record(now - startMs, now);
  }

  stats(): Partial<LayerStats> {
    let exhausted = 0;
    for (const b of this.#budgets) exhausted += b.exhausted;
    return { hedges: this.hedges, hedgesWon: this.hedgesWon, hedgeBudgetExhausted: exhausted };
  }
}
