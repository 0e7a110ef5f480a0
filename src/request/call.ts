/**
 * One request through a service: the controller the caller's handler holds, its attempts, and
 * the retry loop.
 *
 * The caller's handler gets *this* object as its controller as soon as the request is dispatched,
 * so it can abort or pause before an endpoint is chosen (while waiting for discovery, a rate-limit
 * token or a concurrency slot, or between attempts). Abort and pause are forwarded to whichever
 * attempt is current — the controller proxy undici's RetryHandler keeps so back-pressure survives
 * a retry. Each attempt is a small handler of its own; callbacks from a superseded attempt are
 * ignored.
 *
 * Retries are decided before anything reaches the caller: a retriable status is held back (its
 * body drained) and a retriable error is swallowed; once response headers are forwarded, nothing
 * is retried. The first attempt runs without any retry machinery; only after a retriable failure
 * does p-retry take over scheduling the rest (with our full-jitter or Retry-After delay).
 */
import { STATUS_CODES } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Duplex } from 'node:stream';
import pRetry from 'p-retry';
import type { Dispatcher } from 'undici';
import type { Endpoint } from '../core/endpoint.js';
import type { PickContext } from '../balancers/balancer.js';
import type { Service } from '../service/service.js';
import type { Target } from '../routing/target.js';
import { Attempt, RetriableFailure } from './attempt.js';
import type { Waiting } from '../layers/concurrency-limit.js';
import { RetryBudgetExhaustedError, TimeoutError, isMeshError, type MeshError } from '../core/errors.js';
import { errorKind, statusKind, type AttemptOutcomeKind } from '../health/outcome.js';
import { backoffMs, isIdempotent, retriableError, retriableStatus, retryAfterMs, type ParsedRetry } from '../layers/retry-policy.js';

type Handler = Dispatcher.DispatchHandler;
type Controller = Dispatcher.DispatchController;
type Headers = Record<string, string | string[] | undefined>;


/** Wraps a streamed request body so we know whether a single chunk was read. */
function guardStream(body: unknown): { body: AsyncIterable<unknown>; started: () => boolean } {
  let started = false;
  const source = body as AsyncIterable<unknown>;
  return {
    body: {
      [Symbol.asyncIterator]() {
        started = true;
        return source[Symbol.asyncIterator]();
      },
    },
    started: () => started,
  };
}

function isReplayable(body: unknown): boolean {
  return body == null || typeof body === 'string' || body instanceof Uint8Array;
}

export class MeshRequest implements Controller, PickContext, Waiting {
  readonly opts: Dispatcher.DispatchOptions;
  /** Host header value the caller addressed (`orders`, `orders:8080`). */
  readonly host: string;
  hash: number | undefined = undefined;
  /** Index of the current attempt (0 = first try). */
  attempt = 0;
  /** Body to send (a guard around a streamed body when retries may need to know it is untouched). */
  body: unknown;
  /** A `Set-Cookie` value to add to the response (a generated hash cookie), or null. */
  setCookie: string | null = null;
  /** Queued for a slot of its subset's own concurrency limit. */
  waitingForSubset = false;
  /** Holds a slot of its subset's own concurrency limit. */
  holdsSubsetSlot = false;

  readonly #handler: Handler;
  readonly #service: Service;
  readonly #policy: ParsedRetry | null;
  readonly #replayable: boolean;
  readonly #idempotent: boolean;
  #bodyStarted: (() => boolean) | null = null;
  /** Endpoints this request must not use again: the first in a field, more in an array (rare). */
  #tried1: Endpoint | null = null;
  #triedMore: Endpoint[] | null = null;
  #current: Attempt | null = null;
  #done = false;
  #aborted = false;
  #timedOut = false;
  #reason: Error | null = null;
  #paused = false;
  #timer: NodeJS.Timeout | null = null;
  /** Set while p-retry drives the attempts. */
  #settle: { resolve(): void; reject(f: RetriableFailure): void } | null = null;
  #retryAbort: AbortController | null = null;
  #holdsRetrySlot = false;
  /** Released exactly once when the request ends. */
  #onFinish: ((req: MeshRequest) => void) | null = null;
  #startMs = 0;
  #deadlineMs = Infinity;

  /** Where this request goes: the whole service or a subset. */
  readonly target: Target;

  constructor(service: Service, opts: Dispatcher.DispatchOptions, handler: Handler, host: string, target: Target, policy: ParsedRetry | null) {
    this.#service = service;
    this.opts = opts;
    this.#handler = handler;
    this.host = host;
    this.target = target;
    this.#policy = policy !== null && policy.attempts > 0 && !opts.upgrade && opts.method !== 'CONNECT' ? policy : null;
    this.#replayable = isReplayable(opts.body);
    this.#idempotent = isIdempotent(opts.method);
    this.body = opts.body;
    if (this.#policy !== null && !this.#replayable) {
      const guard = guardStream(opts.body);
      this.body = guard.body;
      this.#bodyStarted = guard.started;
    }
  }

  // ===== DispatchController (held by the caller's handler) =====

  get aborted(): boolean {
    return this.#aborted;
  }
  get paused(): boolean {
    return this.#paused;
  }
  get reason(): Error | null {
    return this.#reason;
  }
  get rawHeaders(): Controller['rawHeaders'] {
    const raw = this.#current?.controller?.rawHeaders;
    if (this.setCookie === null || !Array.isArray(raw)) return raw;
    return [...raw, Buffer.from('set-cookie'), Buffer.from(this.setCookie)] as Controller['rawHeaders'];
  }
  get rawTrailers(): Controller['rawTrailers'] {
    return this.#current?.controller?.rawTrailers;
  }

  abort(reason: Error): void {
    if (this.#done || this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#retryAbort?.abort(reason);
    const inner = this.#current?.controller;
    if (inner) inner.abort(reason);
    else this.fail(reason);
  }

  pause(): void {
    this.#paused = true;
    this.#current?.controller?.pause();
  }

  resume(): void {
    this.#paused = false;
    this.#current?.controller?.resume();
  }

  // ===== PickContext =====

  skip(endpoint: Endpoint): boolean {
    if (this.#tried1 === endpoint) return true;
    const more = this.#triedMore;
    return more !== null && more.includes(endpoint);
  }

  /** Exclude `endpoint` from this request's remaining picks. */
  exclude(endpoint: Endpoint): void {
    if (this.#tried1 === null) this.#tried1 = endpoint;
    else (this.#triedMore ??= []).push(endpoint);
  }

  /** Allow already-tried endpoints again (a retry when no untried one is left). */
  resetExcluded(): void {
    this.#tried1 = null;
    this.#triedMore = null;
  }

  // ===== Waiting (a queued request, for the concurrency limit) =====

  /** A concurrency slot is free for this request. */
  admit(): void {
    this.#service.go(this);
  }

  /** This request waited too long for a slot. */
  expire(): void {
    this.#service.queueExpired(this);
  }

  // ===== lifecycle, driven by the service =====

  /** Run `fn` once when the request ends (releases its concurrency slot). */
  onFinish(fn: (req: MeshRequest) => void): void {
    if (this.#done) fn(this);
    else this.#onFinish = fn;
  }

  /** Hand the caller its controller and arm the deadline. Returns false if the caller aborted at once. */
  start(timeoutMs: number, onFinish: (req: MeshRequest) => void): boolean {
    this.#onFinish = onFinish;
    this.#startMs = this.#service.now();
    this.#handler.onRequestStart?.(this, null);
    if (this.#aborted) return false;
    if (timeoutMs > 0) {
      this.#deadlineMs = this.#startMs + timeoutMs;
      this.#timer = setTimeout(() => {
        if (this.#done || this.#aborted) return;
        this.#timedOut = true;
        this.abort(new TimeoutError(this.#service.name, timeoutMs, { attempts: this.attempt + 1, endpoint: this.#current?.endpoint.key }));
      }, timeoutMs);
      this.#timer.unref?.();
    }
    return true;
  }

  get done(): boolean {
    return this.#done || this.#aborted;
  }

  /** Send this request to `endpoint` as the current attempt. */
  send(endpoint: Endpoint): void {
    const now = this.#service.now();
    const attempt = new Attempt(this, endpoint, now);
    this.#current = attempt;
    this.exclude(endpoint);
    endpoint.onStart(now);
    const perTry = this.#policy?.perTryTimeoutMs ?? 0;
    if (perTry > 0) attempt.armPerTryTimeout(perTry, this.#service.name);
    try {
      endpoint.dispatcher.dispatch(this.#service.endpointOptions(this, endpoint), attempt);
    } catch (err) {
      // Only bad arguments throw synchronously: report them like any other failure.
      attempt.onResponseError(null, err as Error);
    }
  }

  /** Answer locally (fault injection's abort) without sending anything. */
  respondLocally(status: number): void {
    if (this.#done) return;
    this.#done = true;
    this.#clearTimer();
    this.#finish(status, undefined);
    const body = Buffer.from('fault filter abort');
    this.#handler.onResponseStart?.(this, status, { 'content-type': 'text/plain', 'content-length': String(body.length) }, STATUS_CODES[status] ?? '');
    this.#handler.onResponseData?.(this, body);
    this.#handler.onResponseEnd?.(this, {});
  }

  /** End the request with `error`. */
  fail(error: Error): void {
    if (this.#done) return;
    this.#done = true;
    this.#clearTimer();
    if (isMeshError(error) && error.attempts === undefined) {
      (error as { attempts: number | undefined }).attempts = this.attempt + 1;
    }
    this.#settle?.resolve();
    this.#finish(0, (error as { code?: string }).code ?? error.name);
    this.#handler.onResponseError?.(this, error);
  }

  #finish(status: number, error: string | undefined): void {
    if (this.#holdsRetrySlot) {
      this.#holdsRetrySlot = false;
      this.#service.retryEnded();
    }
    const f = this.#onFinish;
    this.#onFinish = null;
    f?.(this);
    this.#service.requestEnded(this, this.#current?.endpoint.key, status, error, this.#startMs);
  }

  #clearTimer(): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
  }

  // ===== retries =====

  /** The outcome class of a failed attempt with no response. */
  kindOf(attempt: Attempt, error: Error): AttemptOutcomeKind {
    if (attempt.perTryTimedOut || this.#timedOut) return 'timeout';
    if (this.#aborted) return 'cancelled';
    return errorKind(error);
  }

  /**
   * May this request be retried after an outcome of `kind`? Checks the policy, the safety rules,
   * the attempts left and the deadline — not the budget (see {@link #takeRetry}).
   */
  #mayRetry(kind: AttemptOutcomeKind): boolean {
    const policy = this.#policy;
    if (policy === null || this.#aborted || this.#done) return false;
    if (this.attempt >= policy.attempts) return false;
    // Safety: a non-idempotent request is retried only if it provably never reached the server.
    if (!this.#idempotent && kind !== 'connect-failure') return false;
    // A streamed body is never replayed: only retried when not a byte of it was read.
    if (!this.#replayable && (kind !== 'connect-failure' || this.#bodyStarted === null || this.#bodyStarted())) return false;
    return true;
  }

  /** Take a retry from the budget and the concurrency limit; emits and counts refusals. */
  #takeRetry(attempt: Attempt, reason: string): 'ok' | 'budget' | 'limit' {
    const verdict = this.#service.takeRetry(attempt.endpoint, reason);
    if (verdict === 'ok' && !this.#holdsRetrySlot) this.#holdsRetrySlot = true;
    else if (verdict === 'ok') this.#service.retryEnded(); // one slot per request is enough
    return verdict;
  }

  /** Called with the response status of `attempt`: true when it is held back to retry. */
  holdForRetry(attempt: Attempt, status: number, headers: Headers): boolean {
    const policy = this.#policy;
    if (policy === null || !retriableStatus(policy, status) || !this.#mayRetry(statusKind(status))) return false;
    let floor = 0;
    if (status === 429 || status === 503) {
      const after = retryAfterMs(headers['retry-after'], Date.now());
      if (after !== undefined) {
        if (after > policy.retryAfterMaxMs) return false;
        floor = after;
      }
    }
    // A Retry-After the deadline cannot wait for: hand the response to the caller now.
    if (floor > 0 && floor >= this.#remainingMs()) return false;
    if (this.#takeRetry(attempt, `status ${status}`) !== 'ok') return false;
    attempt.retryFailure = new RetriableFailure(`status ${status}`, floor);
    return true;
  }

  /** A held-back response ended (or was dropped): go on with the retry. */
  heldResponseDone(attempt: Attempt): void {
    if (attempt !== this.#current || this.#done) return;
    this.#retryWith(attempt.retryFailure!);
  }

  /** Time left before the request's deadline, ms (Infinity without one). */
  #remainingMs(): number {
    return this.#deadlineMs === Infinity ? Infinity : this.#deadlineMs - this.#service.now();
  }

  #retryWith(failure: RetriableFailure): void {
    this.#current = null;
    if (this.#settle !== null) {
      const settle = this.#settle;
      this.#settle = null;
      settle.reject(failure);
      return;
    }
    this.#startRetries(failure);
  }

  #startRetries(first: RetriableFailure): void {
    const policy = this.#policy!;
    const ac = (this.#retryAbort = new AbortController());
    pRetry(
      (n: number) => {
        if (n === 1) throw first;
        return new Promise<void>((resolve, reject) => {
          this.#settle = { resolve, reject };
          this.attempt++;
          this.#service.sendAttempt(this);
        });
      },
      {
        retries: policy.attempts,
        minTimeout: 0,
        maxTimeout: 0,
        signal: ac.signal,
        onFailedAttempt: async ({ error, attemptNumber }) => {
          const f = error as RetriableFailure;
          const delayMs = Math.max(f.delayFloorMs, backoffMs(policy, attemptNumber, this.#service.random));
          this.#service.emitRetry(this, attemptNumber, delayMs, f.reason);
          if (delayMs > 0) await sleep(delayMs, undefined, { signal: ac.signal, ref: false });
        },
        shouldRetry: ({ error }) => error instanceof RetriableFailure && !this.done,
      },
    ).then(
      () => {},
      (err: unknown) => {
        // Only an abort (caller, deadline) ends up here; `abort` already failed the request.
        if (!this.#done) this.fail(err as Error);
      },
    );
  }

  // ===== callbacks from the current attempt =====

  /** @internal */
  attemptStarted(attempt: Attempt, controller: Controller): void {
    if (attempt !== this.#current || this.#done) {
      controller.abort(attempt.abandonedBy ?? this.#reason ?? new Error('meshlet: attempt superseded'));
      return;
    }
    if (this.#aborted) {
      controller.abort(this.#reason!);
      return;
    }
    if (this.#paused) controller.pause();
  }

  /** @internal */
  responseStart(attempt: Attempt, status: number, headers: Headers, message: string | undefined): void {
    if (attempt !== this.#current || this.#done) return;
    this.#settle?.resolve();
    this.#settle = null;
    if (this.setCookie !== null && status >= 200) {
      const existing = headers['set-cookie'];
      headers = { ...headers, 'set-cookie': existing === undefined ? this.setCookie : [...(Array.isArray(existing) ? existing : [existing]), this.setCookie] };
    }
    this.#handler.onResponseStart?.(this, status, headers, message);
  }

  /** @internal */
  responseData(attempt: Attempt, chunk: Buffer): void {
    if (attempt !== this.#current || this.#done) return;
    this.#handler.onResponseData?.(this, chunk);
  }

  /** @internal */
  responseEnd(attempt: Attempt, trailers: Headers): void {
    if (attempt !== this.#current || this.#done) return;
    this.#done = true;
    this.#clearTimer();
    this.#finish(attempt.status, undefined);
    this.#handler.onResponseEnd?.(this, trailers);
  }

  /** @internal A failure with no response headers forwarded (or a body failure after them). */
  responseError(attempt: Attempt, error: Error, kind: AttemptOutcomeKind, headersSent: boolean): void {
    if (attempt !== this.#current || this.#done) return;
    if (!headersSent && this.#policy !== null && retriableError(this.#policy, kind) && this.#mayRetry(kind)) {
      const verdict = this.#takeRetry(attempt, kind);
      if (verdict === 'ok') {
        this.#retryWith(new RetriableFailure(kind, 0));
        return;
      }
      if (verdict === 'budget') {
        this.fail(new RetryBudgetExhaustedError(this.#service.name, error, { endpoint: attempt.endpoint.key, attempts: this.attempt + 1 }));
        return;
      }
    }
    this.fail(this.#aborted && this.#reason ? this.#reason : annotate(error, this.#service.name, attempt.endpoint, this.attempt + 1));
  }

  /** @internal */
  upgrade(attempt: Attempt, status: number, headers: Headers, socket: Duplex): void {
    if (attempt !== this.#current || this.#done) return;
    this.#done = true;
    this.#clearTimer();
    this.#finish(status, undefined);
    this.#handler.onRequestUpgrade?.(this, status, headers, socket);
  }

  /** @internal */
  get service(): Service {
    return this.#service;
  }

  /** @internal */
  get handler(): Handler {
    return this.#handler;
  }
}

function annotate(error: Error, service: string, endpoint: Endpoint, attempts: number): Error {
  if (isMeshError(error)) {
    const e = error as MeshError & { endpoint: string | undefined; attempts: number | undefined };
    if (e.endpoint === undefined) e.endpoint = endpoint.key;
    if (e.attempts === undefined) e.attempts = attempts;
  }
  return error;
}
