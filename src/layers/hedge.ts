/**
 * The hedge layer: a request still outstanding after the hedge delay gets a copy on another
 * endpoint; the first response wins, the other copies are cancelled, and the caller sees exactly
 * one response ("The Tail at Scale", Dean and Barroso 2013; gRPC A6 hedging; Envoy's
 * hedge_on_per_try_timeout). The policy is in hedge-config.ts.
 *
 * Per request, a sink wrapped around the retry layer's (it sits between retry and pick, so each
 * retry starts a new race). The call's `current` attempt and its `others` are the copies in
 * flight; all of them report here:
 *  - response headers with a status that is not non-fatal win: the winner becomes `current`,
 *    every other copy is cancelled ('cancelled': blameless; what it ran feeds its endpoint's
 *    latency as a lower bound) and the response goes on to the retry layer and the caller;
 *  - a non-fatal status (drained) or a failure with no response, while another copy still runs,
 *    only takes that copy out of the race; the last copy's outcome is the race's, for the retry
 *    layer to judge;
 *  - the caller's abort, the deadline and the mesh closing end the race at once.
 * A copy goes only to an endpoint not tried yet, needs a replayable body (a streamed one kept
 * whole: request/body.ts), and takes a token from the hedge budget (given back when no endpoint
 * was left). The adaptive delay reads a percentile of the latencies of this layer's attempts
 * (load/latency-quantile.ts), cancelled copies counted at the time they ran, so hedging does not
 * hide the slow tail it is measured on. On when the service or a route configures `hedge`.
 */
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { MeshEvents } from '../core/events.js';
import type { AttemptOutcomeKind } from '../health/outcome.js';
import { LatencyQuantile } from '../load/latency-quantile.js';
import type { Attempt, AttemptSink } from '../request/attempt.js';
import type { Call } from '../request/call.js';
import type { Layer, LayerStats, Next } from '../request/layer.js';
import { HEDGE_MIN_SAMPLES, HEDGE_WINDOW_MS, type ParsedHedge } from './hedge-config.js';
import { RetryBudget } from './retry-budget.js';
import { isIdempotent } from './retry-policy.js';

type Headers = Record<string, string | string[] | undefined>;

/** Hedge policies of one service: its own and its routes' (by route index; undefined inherits). */
export interface HedgePolicies {
  readonly service: ParsedHedge | null;
  readonly byRoute: readonly (ParsedHedge | null | undefined)[];
}

/** A policy with its budget, which counts the requests that policy covers. */
interface Policy {
  readonly config: ParsedHedge;
  readonly budget: RetryBudget | null;
}

const LOST = (): Error => Object.assign(new Error('meshlet: another hedged attempt answered first'), { name: 'AbortError' });

export class HedgeLayer implements Layer {
  readonly name = 'hedge';
  readonly service: string;
  readonly events: MeshEvents;
  readonly now: () => number;
  readonly #service: Policy | null;
  readonly #byRoute: readonly (Policy | null | undefined)[];
  readonly #budgets: RetryBudget[] = [];
  /** The service's recent latencies, when a policy hedges at a percentile. */
  readonly latencies: LatencyQuantile | null;
  hedges = 0;
  hedgesWon = 0;

  constructor(policies: HedgePolicies, deps: { service: string; events: MeshEvents; now: () => number }) {
    this.service = deps.service;
    this.events = deps.events;
    this.now = deps.now;
    const made = new Map<ParsedHedge, Policy>();
    const policy = (c: ParsedHedge | null | undefined): Policy | null | undefined => {
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

/** One request's hedge races (one per try the retry layer makes). */
class HedgeRun implements AttemptSink {
  readonly #layer: HedgeLayer;
  readonly #policy: Policy;
  readonly #call: Call;
  readonly #next: Next;
  readonly #inner: AttemptSink;
  readonly #fixedMs: number | null;
  #timer: NodeJS.Timeout | null = null;
  #delayMs = 0;
  /** Copies sent in this race. */
  #sent = 0;
  #first: Attempt | null = null;
  #decided = false;
  /** Copies whose non-fatal response is being drained. */
  #held: Attempt[] | null = null;

  constructor(layer: HedgeLayer, policy: Policy, call: Call, next: Next, fixedMs: number | null) {
    this.#layer = layer;
    this.#policy = policy;
    this.#call = call;
    this.#next = next;
    this.#inner = call.sink;
    this.#fixedMs = fixedMs;
    call.onEnd(() => this.#ended());
  }

  /** Start a race: the first copy now, the next after the delay. */
  begin(): void {
    const call = this.#call;
    this.#decided = false;
    this.#sent = 1;
    this.#first = null;
    this.#next(call);
    if (call.done || this.#decided) return; // nothing to pick, or it failed at once
    this.#first = call.current;
    const delay = this.#layer.delayMs(this.#policy.config, this.#fixedMs);
    if (delay !== undefined) this.#arm(delay);
  }

  #arm(ms: number): void {
    this.#delayMs = ms;
    this.#timer = setTimeout(() => this.#hedge(), ms);
    this.#timer.unref?.(); // the attempts in flight keep the process alive
  }

  #clear(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** The delay ran out: send one more copy, budget and endpoints permitting. */
  #hedge(): void {
    this.#timer = null;
    const call = this.#call;
    const layer = this.#layer;
    if (call.done || this.#decided || !call.replayable) return;
    const budget = this.#policy.budget;
    const prev = call.current!;
    if (budget !== null && !budget.tryRetry()) {
      layer.events.emit('hedge-budget-exhausted', { service: layer.service, endpoint: prev.endpoint.key });
      return;
    }
    const others = (call.others ??= []);
    others.push(prev);
    const n = call.attempt;
    call.attempt = n + 1;
    call.hedging = true;
    this.#next(call);
    const sent = call.hedging; // picking resets it when no endpoint was left
    call.hedging = false;
    if (!sent) {
      others.pop();
      if (others.length === 0) call.others = null;
      call.attempt = n;
      budget?.refund();
      return;
    }
    this.#sent++;
    layer.hedges++;
    layer.events.emit('hedge', { service: layer.service, endpoint: prev.endpoint.key, attempt: n + 1, delayMs: this.#delayMs });
    if (this.#sent < this.#policy.config.maxAttempts && !this.#decided && !call.done) this.#arm(this.#delayMs);
  }

  /** True while another copy than `attempt` is still in the race. */
  #racing(): boolean {
    return !this.#decided && this.#call.others !== null;
  }

  /** `attempt` leaves the race; another copy still in flight takes its place as current. */
  #retire(attempt: Attempt): void {
    const call = this.#call;
    const others = call.others!;
    if (call.current === attempt) call.current = others.pop()!;
    else others.splice(others.indexOf(attempt), 1);
    if (others.length === 0) call.others = null;
  }

  /** The race is decided by `winner`'s outcome: it becomes current; every other copy is cancelled. */
  #decide(winner: Attempt): void {
    this.#decided = true;
    this.#clear();
    const call = this.#call;
    const others = call.others;
    if (others === null) return;
    call.others = null;
    const prev = call.current!;
    call.current = winner;
    if (prev !== winner) this.#cancel(prev);
    for (const a of others) if (a !== winner) this.#cancel(a);
  }

  #cancel(a: Attempt): void {
    if (a.status === 0 && !a.ended) this.#layer.sample(a.startMs);
    a.cancel(LOST());
  }

  /** The request ended: no more copies, and those still running are cancelled. */
  #ended(): void {
    this.#clear();
    const call = this.#call;
    const others = call.others;
    if (others === null) return;
    call.others = null;
    for (const a of others) if (a !== call.current) this.#cancel(a);
  }

  // ===== AttemptSink =====

  attemptStarted(attempt: Attempt, controller: Dispatcher.DispatchController): void {
    this.#inner.attemptStarted(attempt, controller);
  }

  responseStart(attempt: Attempt, status: number, headers: Headers, message: string | undefined): boolean {
    if (status < 200) return this.#racing() ? true : this.#inner.responseStart(attempt, status, headers, message);
    if (status < 500) this.#layer.sample(attempt.startMs);
    if (!this.#decided) {
      if (this.#racing() && this.#policy.config.nonFatalStatuses.has(status)) {
        this.#retire(attempt);
        (this.#held ??= []).push(attempt);
        return false; // drained; the other copies go on
      }
      if (this.#sent > 1 && attempt !== this.#first) this.#layer.hedgesWon++;
      this.#decide(attempt);
    }
    return this.#inner.responseStart(attempt, status, headers, message);
  }

  responseData(attempt: Attempt, chunk: Buffer): void {
    this.#inner.responseData(attempt, chunk);
  }

  responseEnd(attempt: Attempt, trailers: Headers): void {
    this.#inner.responseEnd(attempt, trailers);
  }

  responseError(attempt: Attempt, error: Error, kind: AttemptOutcomeKind, headersSent: boolean): void {
    if (!headersSent && !this.#call.aborted && this.#racing()) return this.#retire(attempt);
    if (!this.#decided) this.#decide(attempt);
    this.#inner.responseError(attempt, error, kind, headersSent);
  }

  heldResponseDone(attempt: Attempt): void {
    const held = this.#held;
    const i = held === null ? -1 : held.indexOf(attempt);
    if (i >= 0) held!.splice(i, 1);
    else this.#inner.heldResponseDone(attempt);
  }

  upgrade(attempt: Attempt, status: number, headers: Headers, socket: Duplex): void {
    this.#inner.upgrade(attempt, status, headers, socket);
  }
}
