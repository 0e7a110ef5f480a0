/**
 * One request's hedge races, one per try the retry layer makes (the layer, and when a request is
 * hedged at all: hedge.ts). A HedgeRun is the call's sink, wrapped around the retry layer's. The
 * call's `current` attempt and its `others` are the copies in flight; all of them report here:
 *  - response headers with a status that is not non-fatal win: the winner becomes `current`,
 *    every other copy is cancelled ('cancelled': blameless; what it ran feeds its endpoint's
 *    latency as a lower bound) and the response goes on to the retry layer and the caller;
 *  - a non-fatal status (drained) or a failure with no response, while another copy still runs,
 *    only takes that copy out of the race; the last copy's outcome is the race's, for the retry
 *    layer to judge;
 *  - the caller's abort, the deadline and the mesh closing end the race at once.
 * A copy goes only to an endpoint not tried yet — on the per-try timeout (hedgeOnPerTryTimeout),
 * to one already tried when none is left, as Envoy's retry would — needs a replayable body (a
 * streamed one kept whole: request/body.ts), and takes a token from the hedge budget (given back
 * when no endpoint was left). `hedgesWon` counts the races a copy won whose response went to the
 * caller (not one the retry layer held back to retry).
 */
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { MeshEvents } from '../core/events.js';
import { statusKind, type AttemptOutcomeKind } from '../health/outcome.js';
import type { Attempt, AttemptSink } from '../request/attempt.js';
import type { Call } from '../request/call.js';
import type { Next } from '../request/layer.js';
import type { ParsedHedge } from './hedge-config.js';
import type { RetryBudget } from './retry-budget.js';

type Headers = Record<string, string | string[] | undefined>;

/** A policy with its budget, which counts the requests that policy covers. */
export interface HedgePolicy {
  readonly config: ParsedHedge;
  readonly budget: RetryBudget | null;
}

/** What a run needs of its layer (HedgeLayer): events, counters, the delay, latency samples. */
export interface HedgeRunLayer {
  readonly service: string;
  readonly events: MeshEvents;
  hedges: number;
  hedgesWon: number;
  delayMs(config: ParsedHedge, fixedMs: number | null): number | undefined;
  sample(startMs: number): void;
}

const LOST = (): Error => Object.assign(new Error('meshlet: another hedged attempt answered first'), { name: 'AbortError' });

/** One request's hedge races (one per try the retry layer makes). */
export class HedgeRun implements AttemptSink {
  readonly #layer: HedgeRunLayer;
  readonly #policy: HedgePolicy;
  readonly #call: Call;
  readonly #next: Next;
  readonly #inner: AttemptSink;
  readonly #fixedMs: number | null;
  /**
   * Envoy's hedge_on_per_try_timeout: the delay is the per-try timeout, timed as one — from when
   * each copy got its connection (attemptStarted), not while it waits for one — and with no
   * untried endpoint left the copy goes to one already tried, as the retry Envoy launches would.
   */
  readonly #perTry: boolean;
  #timer: NodeJS.Timeout | null = null;
  #delayMs = 0;
  /** Copies sent in this race. */
  #sent = 0;
  #first: Attempt | null = null;
  #decided = false;
  /** Copies whose non-fatal response is being drained. */
  #held: Attempt[] | null = null;

  constructor(layer: HedgeRunLayer, policy: HedgePolicy, call: Call, next: Next, fixedMs: number | null) {
    this.#layer = layer;
    this.#policy = policy;
    this.#call = call;
    this.#next = next;
    this.#inner = call.sink;
    this.#fixedMs = fixedMs;
    this.#perTry = policy.config.hedgeOnPerTryTimeout;
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
    if (this.#perTry) return; // armed when the copy starts on a connection (attemptStarted)
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
    if (call.done || this.#decided || !call.replayable || this.#sent >= this.#policy.config.maxAttempts) return;
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
    call.hedging = this.#perTry ? 'any' : 'untried';
    this.#next(call);
    const sent = (call.hedging as Call['hedging']) !== false; // picking resets it when no endpoint was left
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
    if (!this.#perTry && this.#sent < this.#policy.config.maxAttempts && !this.#decided && !call.done) this.#arm(this.#delayMs);
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
    // On the per-try timeout: the newest copy's try starts now that it has its connection.
    if (this.#perTry && attempt === this.#call.current && !attempt.ended && this.#timer === null && !this.#decided && !this.#call.done) {
      if (this.#sent < this.#policy.config.maxAttempts) this.#arm(this.#fixedMs!);
    }
  }

  responseStart(attempt: Attempt, status: number, headers: Headers, message: string | undefined): boolean {
    if (status < 200) return this.#racing() ? true : this.#inner.responseStart(attempt, status, headers, message);
    if (statusKind(status) === 'success') this.#layer.sample(attempt.startMs);
    if (!this.#decided) {
      if (this.#racing() && this.#policy.config.nonFatalStatuses.has(status)) {
        this.#retire(attempt);
        (this.#held ??= []).push(attempt);
        return false; // drained; the other copies go on
      }
      const copy = this.#sent > 1 && attempt !== this.#first;
      this.#decide(attempt);
      // Won only when the caller gets it: not when the retry layer holds it back to retry.
      const delivered = this.#inner.responseStart(attempt, status, headers, message);
      if (copy && delivered) this.#layer.hedgesWon++;
      return delivered;
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
