/**
 * The retry layer: per request, a sink wrapped around the call (undici's RetryHandler shape) that
 * sees each attempt's response before the caller does. A retriable status is held back (its body
 * drained) and a retriable error swallowed; then, after a full-jitter back-off (or the response's
 * `Retry-After`), the rest of the pipeline — pick and attempt — runs again, on another endpoint
 * when there is one. Once response headers reach the caller nothing is retried.
 *
 * The safety rules (retry-policy.ts) are never traded for success: a non-idempotent request only
 * after a proven connect failure; a streamed body only when it was kept whole (read to its end
 * within `perRequestBufferLimitBytes`) or not one byte of it was read. Every
 * retry takes a token from the retry budget of the policy that applied and, when
 * `limits.maxRetries` is set, a slot of it. A subset's or route's policy that sets a budget has
 * its own; one that sets none shares the service's (with the service's `retry: false`, one with
 * the defaults, shared by all of these). Each budget counts the requests of the policies that
 * share it — a budget is a share of the requests it covers. The budgets are made with the layer,
 * never per request. The back-off timer keeps the process alive while the request waits on it; a
 * request aborted meanwhile (its caller, its deadline, the mesh closing) is not retried: the
 * budget's token taken when the retry was decided is given back, and the retry is neither counted
 * (`retries`) nor announced (`retry`), both of which happen when it is sent. Nor is one no
 * endpoint takes when it falls due (every endpoint's rate limit refuses it, none is healthy): the
 * pick hands it back (`call.retrying`), and the caller gets the response held back — its drained
 * body is kept for this, within the drain's 64 KiB — or the error, as when `limits.maxRetries`
 * refuses a retry. The retry slot is
 * the request's until it ends either way. On whenever the service, a subset or a route has a
 * retry policy.
 */
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { RetryBudgetExhaustedError } from '../core/errors.js';
import type { MeshEvents } from '../core/events.js';
import { statusKind, type AttemptOutcomeKind } from '../health/outcome.js';
import type { Target } from '../routing/target.js';
import type { Attempt, AttemptSink } from '../request/attempt.js';
import type { Call, UnsentRetry } from '../request/call.js';
import type { Layer, LayerStats, Next } from '../request/layer.js';
import type { ConcurrencyLimit } from './concurrency-limit.js';
import { parseBudgetConfig, RetryBudget, type ParsedBudget } from './retry-budget.js';
import { backoffMs, isIdempotent, retriableError, retriableStatus, retryAfterMs, type ParsedRetry } from './retry-policy.js';

type Headers = Record<string, string | string[] | undefined>;

/** Retry policies of one service: its own, its subsets' and its routes' (by route index). */
export interface RetryPolicies {
  readonly service: ParsedRetry | null;
  readonly bySubset: ReadonlyMap<Target, ParsedRetry | null>;
  readonly byRoute: readonly (ParsedRetry | null | undefined)[];
}

/** A retry policy and the budget its retries take from (null: none). */
interface RetryPolicy {
  readonly config: ParsedRetry;
  readonly budget: RetryBudget | null;
}

export class RetryLayer implements Layer {
  readonly name = 'retry';
  readonly limit: ConcurrencyLimit;
  readonly service: string;
  readonly events: MeshEvents;
  readonly random: () => number;
  readonly #service: RetryPolicy | null;
  readonly #bySubset: ReadonlyMap<Target, RetryPolicy | null>;
  readonly #byRoute: readonly (RetryPolicy | null | undefined)[];
  /** Every budget of the layer, once each (for stats). */
  readonly #budgets: RetryBudget[] = [];
  retries = 0;
  /** Retries refused by `limits.maxRetries`: the service's `overloaded`, as each emits `overloaded`. */
  overloaded = 0;

  constructor(policies: RetryPolicies, limit: ConcurrencyLimit, deps: { service: string; events: MeshEvents; random: () => number; now: () => number }) {
    this.limit = limit;
    this.service = deps.service;
    this.events = deps.events;
    this.random = deps.random;
    const budget = (b: ParsedBudget): RetryBudget => {
      const made = new RetryBudget(b, deps.now);
      this.#budgets.push(made);
      return made;
    };
    const own = policies.service?.budget;
    const serviceBudget = own ? budget(own) : null;
    // What a subset's or route's policy without a budget of its own shares: the service's; with
    // no service policy (`retry: false`) one with the defaults, so such retries are never unbounded.
    let shared: RetryBudget | null | undefined = policies.service !== null ? serviceBudget : undefined;
    const made = new Map<ParsedRetry, RetryPolicy>();
    const policy = (c: ParsedRetry | null | undefined): RetryPolicy | null | undefined => {
      if (c == null) return c;
      let p = made.get(c);
      if (p === undefined) {
        let b: RetryBudget | null;
        if (c === policies.service) b = serviceBudget;
        else if (c.budget !== undefined) b = c.budget === null ? null : budget(c.budget);
        else b = shared === undefined ? (shared = budget(parseBudgetConfig(undefined, 'retry.budget')!)) : shared;
        p = { config: c, budget: b };
        made.set(c, p);
      }
      return p;
    };
    this.#service = policy(policies.service) ?? null;
    this.#bySubset = new Map([...policies.bySubset].map(([t, c]) => [t, policy(c) ?? null]));
    this.#byRoute = policies.byRoute.map(policy);
  }

  static needed(p: RetryPolicies): boolean {
    // A per-try timeout applies to the one try of a policy with no retries too.
    const on = (r: ParsedRetry | null | undefined): boolean => r != null && (r.attempts > 0 || r.perTryTimeoutMs > 0);
    return on(p.service) || [...p.bySubset.values()].some(on) || p.byRoute.some(on);
  }

  handle(call: Call, next: Next): void {
    const byRoute = call.routeIndex >= 0 ? this.#byRoute[call.routeIndex] : undefined;
    const bySubset = this.#bySubset;
    const p = byRoute !== undefined ? byRoute : bySubset.has(call.target) ? bySubset.get(call.target)! : this.#service;
    if (p === null) return next(call);
    // The request counts in the budget of the policy that covers it, retried or not.
    p.budget?.onRequest(call.startMs);
    const policy = p.config;
    if (call.opts.upgrade || call.opts.method === 'CONNECT') return next(call);
    call.perTryTimeoutMs = policy.perTryTimeoutMs;
    if (policy.attempts === 0) return next(call);
    call.sink = new RetryRun(this, call, p, next);
    next(call);
  }

  stats(): Partial<LayerStats> {
    let exhausted = 0;
    for (const b of this.#budgets) exhausted += b.exhausted;
    return { retries: this.retries, retryBudgetExhausted: exhausted, overloaded: this.overloaded };
  }
}

/** What a retry was decided on: the response held back, or the error swallowed. */
type Retried =
  | { readonly attempt: Attempt; readonly status: number; readonly headers: Headers; readonly message: string | undefined; readonly error: null }
  | { readonly attempt: Attempt; readonly error: Error; readonly kind: AttemptOutcomeKind };

/** One request's retries. */
class RetryRun implements AttemptSink, UnsentRetry {
  readonly #layer: RetryLayer;
  readonly #call: Call;
  readonly #policy: ParsedRetry;
  /** The budget of the policy that applied. */
  readonly #budget: RetryBudget | null;
  readonly #next: Next;
  #held: { reason: string; floorMs: number } | null = null;
  /** What the retry being decided or sent would replace: the caller's if the retry is not sent after all. */
  #retried: Retried | null = null;
  #holdsSlot = false;
  /** Retries decided (hedges are not retries: call.attempt counts those too). */
  #retries = 0;
  /** A budget token was taken for a retry not sent yet: given back if the request ends first. */
  #owed = false;
  /** When that token was taken (the budget's clock). */
  #owedAtMs = 0;

  constructor(layer: RetryLayer, call: Call, policy: RetryPolicy, next: Next) {
    this.#layer = layer;
    this.#call = call;
    this.#policy = policy.config;
    this.#budget = policy.budget;
    this.#next = next;
  }

  /** May the request be retried after an outcome of `kind`? Policy, safety, attempts left. */
  #may(kind: AttemptOutcomeKind): boolean {
    const call = this.#call;
    if (call.done || this.#retries >= this.#policy.attempts) return false;
    // Safety: a non-idempotent request is retried only if it provably never reached the server.
    if (!isIdempotent(call.opts.method) && kind !== 'connect-failure') return false;
    // A streamed body is replayed only from its kept bytes (read whole within the buffer limit);
    // otherwise it is retried only when not a byte of it was read.
    if (!call.replayable && (kind !== 'connect-failure' || call.bodyStarted)) return false;
    return true;
  }

  /** Take a retry from the concurrency limit and the budget; emits and counts refusals. */
  #take(attempt: Attempt, reason: string): 'ok' | 'budget' | 'limit' {
    const layer = this.#layer;
    if (!this.#holdsSlot) {
      if (!layer.limit.tryRetry()) {
        // Envoy's upstream_rq_retry_overflow: a circuit-breaker refusal, counted with the others.
        layer.overloaded++;
        layer.events.emit('overloaded', { service: layer.service, limit: 'maxRetries' });
        return 'limit';
      }
    }
    if (this.#budget !== null && !this.#budget.tryRetry()) {
      if (!this.#holdsSlot) layer.limit.retryEnded();
      layer.events.emit('retry-budget-exhausted', { service: layer.service, endpoint: attempt.endpoint.key, reason });
      return 'budget';
    }
    if (this.#budget !== null) {
      this.#owed = true;
      this.#owedAtMs = this.#budget.takenAtMs;
    }
    if (!this.#holdsSlot) {
      // One retry slot per request, held until it ends; a token for a retry never sent goes back.
      this.#holdsSlot = true;
      this.#call.onEnd(() => {
        layer.limit.retryEnded();
        if (this.#owed) this.#budget!.refund(this.#owedAtMs);
      });
    }
    return 'ok';
  }

  #retry(attempt: Attempt, reason: string, floorMs: number): void {
    const call = this.#call;
    const layer = this.#layer;
    const n = call.attempt + 1;
    this.#retries++;
    const delayMs = Math.max(floorMs, backoffMs(this.#policy, this.#retries, layer.random));
    const endpoint = attempt.endpoint.key;
    // Counted and announced when sent: a request that ends during the back-off (the mesh closing)
    // was not retried (call.wait does not run this then), nor one no endpoint took — the pick
    // hands it back (`handBack`: the caller gets what was retried) or fails it; either way no new
    // attempt became the current one.
    call.wait(delayMs, () => {
      call.attempt = n;
      call.retrying = this;
      this.#next(call);
      call.retrying = null;
      if (call.current === attempt) return;
      this.#retried = null;
      this.#owed = false;
      layer.retries++;
      layer.events.emit('retry', { service: layer.service, endpoint, attempt: n, delayMs, reason });
    });
  }

  // ===== UnsentRetry: the pick sent nothing =====

  get canHandBack(): boolean {
    const r = this.#retried;
    return r !== null && (r.error !== null || r.attempt.heldResponse() !== null);
  }

  /**
   * The retry was not sent: as with `limits.maxRetries` refusing it, the caller gets the response
   * held back (drained whole, so kept) or the error, and the retry counts nowhere. Its budget
   * token goes back as the call ends.
   */
  handBack(): void {
    const r = this.#retried!;
    this.#retried = null;
    const call = this.#call;
    call.attempt--;
    if (r.error !== null) return call.responseError(r.attempt, r.error, r.kind, false);
    const held = r.attempt.heldResponse()!;
    call.responseStart(r.attempt, r.status, r.headers, r.message);
    for (const chunk of held.body) call.responseData(r.attempt, chunk);
    call.responseEnd(r.attempt, held.trailers);
  }

  // ===== AttemptSink =====

  attemptStarted(attempt: Attempt, controller: Dispatcher.DispatchController): void {
    this.#call.attemptStarted(attempt, controller);
  }

  responseStart(attempt: Attempt, status: number, headers: Headers, message: string | undefined): boolean {
    const policy = this.#policy;
    if (status >= 200 && retriableStatus(policy, status) && this.#may(statusKind(status))) {
      let floorMs = 0;
      if (status === 429 || status === 503) {
        const after = retryAfterMs(headers['retry-after'], Date.now());
        if (after !== undefined) floorMs = after;
      }
      // A Retry-After longer than the cap, or than the deadline can wait: the caller gets it now.
      const waitable = floorMs <= policy.retryAfterMaxMs && (floorMs === 0 || floorMs < this.#call.remainingMs());
      if (waitable && this.#take(attempt, `status ${status}`) === 'ok') {
        this.#held = { reason: `status ${status}`, floorMs };
        this.#retried = { attempt, status, headers, message, error: null };
        return false;
      }
    }
    return this.#call.responseStart(attempt, status, headers, message);
  }

  responseData(attempt: Attempt, chunk: Buffer): void {
    this.#call.responseData(attempt, chunk);
  }

  responseEnd(attempt: Attempt, trailers: Headers): void {
    this.#call.responseEnd(attempt, trailers);
  }

  responseError(attempt: Attempt, error: Error, kind: AttemptOutcomeKind, headersSent: boolean): void {
    if (!headersSent && retriableError(this.#policy, kind) && this.#may(kind)) {
      const verdict = this.#take(attempt, kind);
      if (verdict === 'ok') {
        this.#retried = { attempt, error, kind };
        return this.#retry(attempt, kind, 0);
      }
      if (verdict === 'budget') {
        const cause = this.#call.errorFor(attempt, error, kind);
        return this.#call.fail(new RetryBudgetExhaustedError(this.#layer.service, cause, { endpoint: attempt.endpoint.key, attempts: this.#call.attempt + 1 }));
      }
    }
    this.#call.responseError(attempt, error, kind, headersSent);
  }

  heldResponseDone(attempt: Attempt): void {
    const held = this.#held;
    this.#held = null;
    const call = this.#call;
    if (held === null || attempt !== call.current) return;
    // Aborted while the held-back response drained: end with the abort's reason.
    if (call.aborted) return call.fail(call.reason!);
    if (!call.done) this.#retry(attempt, held.reason, held.floorMs);
  }

  upgrade(attempt: Attempt, status: number, headers: Headers, socket: Duplex): void {
    this.#call.upgrade(attempt, status, headers, socket);
  }
}
