/**
 * One request through a service: the controller the caller's handler holds from dispatch to the
 * end, the pick context balancers read, and the little state the layers share (target, hash,
 * deadline, attempt number). What a request *does* lives in the layers (layers/); this object only
 * carries it and keeps the rules every layer relies on:
 *  - the caller gets exactly one ending: a response end, an upgrade, or one error;
 *  - abort reaches whichever attempt is current, pause and resume every attempt in flight for the
 *    caller (call-controller.ts);
 *  - a timer a request waits on (`wait`, call-timers.ts) keeps the process alive and is cleared
 *    when it ends; its deadline does not;
 *  - every failure handed to the caller is a MeshError with service, endpoint and attempts, the
 *    underlying error as `cause` — except the caller's own abort reason, returned as given.
 *
 * Attempts report to `sink`: the call itself (forward to the caller) unless a layer wrapped it —
 * the retry layer does, to hold back what it will retry (undici's RetryHandler shape).
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Endpoint } from '../core/endpoint.js';
import { describe } from '../core/endpoint-spec.js';
import { InvalidRequestError, isMeshError, LayerFailedError, RequestBodyError, UpstreamError, type MeshError } from '../core/errors.js';
import type { Target } from '../routing/target.js';
import type { AttemptOutcomeKind } from '../health/outcome.js';
import { editResponseHeaders, type CompiledHeaderOps } from '../routing/header-ops.js';
import type { Attempt, AttemptSink } from './attempt.js';
import { guardBody, type BodyGuard } from './body.js';
import type { EndListener, MeshCall } from './call-view.js';
import type { CallEnv as Env } from './call-env.js';
import { CallController } from './call-controller.js';

type Handler = Dispatcher.DispatchHandler;
type Controller = Dispatcher.DispatchController;
type Headers = Record<string, string | string[] | undefined>;

export type { EndListener, MeshCall } from './call-view.js';

/** A retry being sent, as the pick sees it (layers/retry.ts). */
export interface UnsentRetry {
  /** True when the caller can be given what was retried (the response held back, drained whole; or the error). */
  readonly canHandBack: boolean;
  /** The retry is not sent: end the call with what was retried, as if no retry had been decided. */
  handBack(): void;
}
/** What a call needs from its service (request/call-env.ts). */
export type CallEnv = Env<Call>;

export class Call extends CallController implements AttemptSink, MeshCall {
  /** The service the call is in: the one addressed, or the one a route handed it over to (the forward layer). */
  env: CallEnv;
  /** The request: the caller's, or a copy (the route rewrote it; the inbound context added headers). Never mutated. */
  opts: Dispatcher.DispatchOptions;
  readonly host: string;
  readonly startMs: number;
  /** Where the request goes: the whole service, or the subset its route chose. */
  target: Target;
  /** Index of the matched route in the service's routes (after them, the routes of other services that send here), or -1. */
  routeIndex = -1;
  /** Another service the matched route sends this request to (set by the route layer, taken by the forward layer), or null. */
  forward: { readonly service: string | null; readonly subset: string | null } | null = null;
  /** The service whose route handed the call over to this one, or null. */
  via: string | null = null;
  /** A `Set-Cookie` value to add to the response (a generated hash cookie), or null. */
  setCookie: string | null = null;
  /** The Host header the route sets (`rewrite.authority`), or null. */
  authority: string | null = null;
  /** The route's operations on the response headers, or null. */
  responseHeaders: CompiledHeaderOps | null = null;
  /** Per-try timeout for each attempt (set by the retry layer), ms; 0 = none. */
  perTryTimeoutMs = 0;
  /** Where attempts report; a layer may wrap it. */
  sink: AttemptSink = this;
  /**
   * Set while the hedge layer sends a copy: picking then never fails the call, and goes back to
   * an endpoint already tried only for `'any'` (a copy on the per-try timeout, a retry in Envoy's
   * terms) — it resets this to false when it sends nothing.
   */
  hedging: false | 'untried' | 'any' = false;
  /**
   * Set by the retry layer while it sends a retry: when the pick sends nothing (every endpoint's
   * rate limit refused it, none is healthy), it hands the request back instead of failing it.
   */
  retrying: UnsentRetry | null = null;
  status = 0;
  error: Error | undefined = undefined;
  /** True while the service's dispatch runs the pipeline synchronously (no wait has happened yet). */
  inDispatch = false;
  /** Links of the service's list of live calls (no allocation per request). */
  prevLive: Call | null = null;
  nextLive: Call | null = null;

  readonly #handler: Handler;
  readonly #body: BodyGuard | null;
  #done = false;
  #onEnd: EndListener | EndListener[] | null = null;

  constructor(env: CallEnv, opts: Dispatcher.DispatchOptions, handler: Handler, host: string, target: Target) {
    super();
    this.env = env;
    this.opts = opts;
    this.#handler = handler;
    this.host = host;
    this.target = target;
    this.startMs = env.now();
    this.#body = guardBody(opts.body, env.perRequestBufferLimitBytes);
  }

  get service(): string {
    return this.env.service;
  }
  get subset(): string | null {
    return this.target.subset;
  }
  get endpoint(): string | undefined {
    return this.current?.endpoint.key;
  }
  /** The body attempts send: the caller's, or a guard around a streamed one (its kept bytes once read whole). */
  get body(): unknown {
    return this.#body === null ? this.opts.body : this.#body.body;
  }
  /** True when the body can be sent again: none, string or bytes, or a stream read whole within the buffer limit. */
  get replayable(): boolean {
    return this.#body === null || this.#body.replayable;
  }
  /** True once undici began reading a streamed body (its iterator was started): from then, it cannot be sent again unless kept whole. */
  get bodyStarted(): boolean {
    return this.#body !== null && this.#body.started;
  }

  /**
   * When an attempt starts: the call's own start while it is still inside the service's dispatch
   * (nothing waited yet, so the clock need not be read twice), else now.
   */
  attemptStartMs(): number {
    return this.inDispatch ? this.startMs : this.env.now();
  }

  protected now(): number {
    return this.env.now();
  }

  // ===== DispatchController (the rest is in call-controller.ts) =====

  get rawHeaders(): Controller['rawHeaders'] {
    const raw = this.current?.controller?.rawHeaders;
    // Edited headers: the raw ones no longer say what the caller got (undici builds them from the object).
    if (this.responseHeaders !== null) return null;
    if (this.setCookie === null || !Array.isArray(raw)) return raw;
    return [...raw, Buffer.from('set-cookie'), Buffer.from(this.setCookie)] as Controller['rawHeaders'];
  }

  // ===== lifecycle =====

  get done(): boolean {
    return this.#done || this.aborted;
  }

  /** Hand the caller its controller. Returns false if the caller aborted at once. */
  start(): boolean {
    this.#handler.onRequestStart?.(this, null);
    return !this.aborted;
  }

  onEnd(listener: EndListener): void {
    if (this.#done) this.#runEnd(listener);
    else if (this.#onEnd === null) this.#onEnd = listener;
    else if (typeof this.#onEnd === 'function') this.#onEnd = [this.#onEnd, listener];
    else this.#onEnd.push(listener);
  }

  /**
   * Answer locally (fault injection's abort, a redirect, a user layer) without sending anything:
   * `text` (default: the status's reason), as text/plain unless `headers` are given.
   */
  respond(status: number, text?: string, headers?: Headers): void {
    if (this.#done) return;
    // Below 200 undici takes it for an informational response and waits for the real one; past
    // 599 it is no HTTP status. Envoy's direct_response allows 200–599 as well.
    if (!(Number.isInteger(status) && status >= 200 && status <= 599)) {
      const problem = `call.respond was given ${describe(status)}: a status is a whole number from 200 to 599; nothing was answered`;
      return this.fail(new LayerFailedError(this.env.service, 'call.respond', undefined, problem));
    }
    this.#settle(status, undefined);
    // 204 and 304 have no body (RFC 9110 §15.3.5, §15.4.5), whatever `text` says, and a 204 no
    // Content-Length; the answer to a HEAD request has its length but no body bytes.
    if (status === 204 || status === 304) {
      const h = headers === undefined ? {} : { ...headers };
      delete h['content-length'];
      this.#handler.onResponseStart?.(this, status, h, STATUS_CODES[status] ?? '');
    } else {
      const body = Buffer.from(text ?? STATUS_CODES[status] ?? '');
      const length = String(body.length);
      const h = headers === undefined ? { 'content-type': 'text/plain', 'content-length': length } : { ...headers, 'content-length': length };
      this.#handler.onResponseStart?.(this, status, h, STATUS_CODES[status] ?? '');
      if (this.opts.method !== 'HEAD') this.#handler.onResponseData?.(this, body);
    }
    this.#handler.onResponseEnd?.(this, {});
  }

  /**
   * End the request with `error` (annotated with the attempts made, when a MeshError). Anything
   * else than an Error — `fail()`, `fail(null)`, `fail('text')`, from a layer — becomes a
   * LAYER_FAILED naming it; the caller's own abort reason is passed on as given, whatever it is.
   */
  fail(error: Error): void {
    if (this.#done) return;
    if (!((error as unknown) instanceof Error) && !(this.aborted && error === this.reason) && !isMeshError(error)) {
      error = new LayerFailedError(this.env.service, 'call.fail', error, `call.fail was given ${describe(error)}, not an Error`);
    }
    if (isMeshError(error)) {
      // An error made where the service is not known (a TLS connector's) is given it here.
      const e = error as MeshError & { service: string | undefined; endpoint: string | undefined; attempts: number | undefined };
      if (e.service === undefined) e.service = this.env.service;
      if (e.attempts === undefined) e.attempts = this.attempt + 1;
      if (e.endpoint === undefined && this.current !== null) e.endpoint = this.current.endpoint.key;
    }
    // The status the caller got, if its response had started (a body cut short, or dropped by the
    // caller): 0 only when it failed without a response.
    this.#settle(this.status, error);
    this.#handler.onResponseError?.(this, error);
  }

  #settle(status: number, error: Error | undefined): void {
    this.#done = true;
    this.status = status;
    this.error = error;
    this.clearTimers();
    this.#body?.release();
    const l = this.#onEnd;
    this.#onEnd = null;
    if (typeof l === 'function') this.#runEnd(l);
    else if (l !== null) for (const f of l) this.#runEnd(f);
    this.env.ended(this);
  }

  /**
   * Run one end listener. One that throws is reported (the service warns once) and skipped: the
   * other listeners — a concurrency slot given back, a breaker's count — the service's books and
   * the caller's ending still happen.
   */
  #runEnd(listener: EndListener): void {
    try {
      listener(this);
    } catch (err) {
      this.env.endListenerThrew(err);
    }
  }

  // ===== outcomes =====

  /**
   * The outcome class of an attempt that failed with no response. The caller's abort and the
   * caller's own body failing say nothing about the endpoint; a per-try timeout or the deadline
   * cutting an attempt that awaits headers on a connection is a timeout (Envoy's
   * LocalOriginTimeout). An attempt abandoned while still queued for a connection never gets
   * here: it is 'cancelled' (attempt.ts).
   */
  kindOf(attempt: Attempt, kind: AttemptOutcomeKind): AttemptOutcomeKind {
    const timedOut = attempt.perTryTimedOut || this.timedOut;
    if (this.#body !== null && this.#body.failed(timedOut || kind === 'timeout')) return 'invalid';
    if (timedOut) return 'timeout';
    if (this.aborted) return 'cancelled';
    return kind;
  }

  /** The error the caller sees for an attempt that failed with `error`. */
  errorFor(attempt: Attempt, error: Error, kind: AttemptOutcomeKind): Error {
    if (this.aborted && this.reason !== null) return this.reason;
    const details = { endpoint: attempt.endpoint.key, attempts: this.attempt + 1 };
    if (kind === 'invalid' && this.#body !== null && this.#body.failed(true)) return new RequestBodyError(this.env.service, this.#body.error ?? error, details);
    if (isMeshError(error)) return error;
    if (kind === 'invalid') return new InvalidRequestError(this.env.service, error, details);
    return new UpstreamError(this.env.service, kind, error, details);
  }

  // ===== AttemptSink: forward to the caller =====

  attemptStarted(attempt: Attempt, controller: Controller): void {
    if (!this.counts(attempt) || this.#done) {
      controller.abort(attempt.abandonedBy ?? this.reason ?? new Error('meshlet: attempt superseded'));
      return;
    }
    if (this.aborted) {
      controller.abort(this.reason!);
      return;
    }
    if (this.paused) controller.pause();
  }

  responseStart(_attempt: Attempt, status: number, headers: Headers, message: string | undefined): boolean {
    if (this.#done) return true;
    if (this.responseHeaders !== null && status >= 200) headers = editResponseHeaders(headers, this.responseHeaders);
    if (this.setCookie !== null && status >= 200) {
      const existing = headers['set-cookie'];
      headers = { ...headers, 'set-cookie': existing === undefined ? this.setCookie : [...(Array.isArray(existing) ? existing : [existing]), this.setCookie] };
    }
    if (status >= 200) this.status = status;
    this.#handler.onResponseStart?.(this, status, headers, message);
    return true;
  }

  responseData(_attempt: Attempt, chunk: Buffer): void {
    if (!this.#done) this.#handler.onResponseData?.(this, chunk);
  }

  responseEnd(attempt: Attempt, trailers: Headers): void {
    if (this.#done) return;
    this.#settle(attempt.status, undefined);
    this.#handler.onResponseEnd?.(this, trailers);
  }

  responseError(attempt: Attempt, error: Error, kind: AttemptOutcomeKind, _headersSent?: boolean): void {
    this.fail(this.errorFor(attempt, error, kind));
  }

  heldResponseDone(): void {
    // The call never holds a response back; only a wrapping sink (retry) does.
  }

  upgrade(attempt: Attempt, status: number, headers: Headers, socket: Duplex): void {
    if (this.#done) return;
    this.env.upgraded(socket);
    this.#settle(attempt.status || status, undefined);
    this.#handler.onRequestUpgrade?.(this, status, headers, socket);
  }

  /** @internal Progress callbacks undici gives the current attempt's handler. */
  get handler(): Handler {
    return this.#handler;
  }
}
