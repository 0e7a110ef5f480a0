/**
 * One try of a request against one endpoint: the handler undici's pool calls. It keeps the
 * endpoint's books (in-flight, latency), reports the outcome to the service's observers through
 * `call.env.observe` (health: outlier detection, breaker, probes) once per attempt, and the
 * endpoint's load report in the response headers when the service reads them, times the try out
 * (`perTryTimeout`, from when undici starts it on a connection — onRequestStart — as Envoy's
 * per_try_timeout starts once a connection is obtained: the wait for one is bounded by the
 * request's deadline only), drains a response its sink holds back for a retry (at most 64 KiB, 100 ms;
 * past either the connection is dropped), and passes everything else
 * to `call.sink`. A try with a deadline (the request's, or its per-try timeout) sends the time
 * it has left (`x-meshlet-deadline-ms`, `x-envoy-expected-rq-timeout-ms`). Callbacks of an attempt that no longer counts (not the call's current one, nor
 * a hedge racing it) only close the endpoint's books; a hedge that lost is `cancel`led. An attempt
 * the request stops waiting for while it is still queued for a connection (`abandon`: its deadline,
 * the caller's abort) never reached the endpoint: its outcome is 'cancelled', blameless.
 */
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Endpoint } from '../core/endpoint.js';
import { PerTryTimeoutError } from '../core/errors.js';
import { hostHeadersOn, withHeaders } from '../core/headers.js';
import { errorKind, statusKind, type AttemptOutcomeKind } from '../health/outcome.js';
import { DEADLINE_HEADER, ENVOY_TIMEOUT_HEADER } from './inbound-context.js';
import type * as Contract from './attempt-contract.js';

/** Where an attempt reports (attempt-contract.ts). */
export type AttemptSink = Contract.AttemptSink<Attempt>;
/** What an attempt needs of its request (attempt-contract.ts). */
export type AttemptCall = Contract.AttemptCall<Attempt>;

type Controller = Dispatcher.DispatchController;
type Headers = Record<string, string | string[] | undefined>;

/** Most bytes of a held-back (retriable) response body drained before the connection is dropped instead. */
const MAX_DRAIN_BYTES = 64 * 1024;
/**
 * Longest wait for the rest of a held-back body: past it the connection is dropped (Envoy resets
 * the upstream stream of a response it retries), so a body that stalls never holds the retry.
 */
const MAX_DRAIN_MS = 100;

export class Attempt implements Dispatcher.DispatchHandler {
  readonly call: AttemptCall;
  readonly endpoint: Endpoint;
  readonly startMs: number;
  controller: Controller | null = null;
  /** Final status (≥ 200) once response headers arrived, else 0. */
  status = 0;
  perTryTimedOut = false;
  /** Set when the call stopped waiting for this attempt before it started on a connection (`abandon`, or a hedge that lost). */
  abandonedBy: Error | null = null;
  #held = false;
  #drained = 0;
  /** A held-back response's body as it drained (within MAX_DRAIN_BYTES), and its trailers once whole. */
  #heldBody: Buffer[] | null = null;
  #heldTrailers: Headers | null = null;
  /** The abort we issue for a held-back body too large or too slow to drain (not counted twice against the endpoint). */
  #drainAbort: Error | null = null;
  #drainTimer: NodeJS.Timeout | null = null;
  /** Time to response headers, ms. */
  #headersMs = 0;
  /** Requests in flight to the endpoint when this one was sent (the RIF its latency is filed under). */
  #rif = 0;
  /** True once the outcome went to `call.env.observe` (exactly once per attempt with an outcome). */
  #observed = false;
  #ended = false;
  #cancelled = false;
  #perTry: NodeJS.Timeout | null = null;

  constructor(call: AttemptCall, endpoint: Endpoint) {
    this.call = call;
    this.endpoint = endpoint;
    this.startMs = call.nowMs;
  }

  /** True once the endpoint's books for this attempt are closed. */
  get ended(): boolean {
    return this.#ended;
  }

  /**
   * True while the attempt waits for a connection: sent to the endpoint's pool, not yet started on
   * a connection (every one of `pool.connections` busy, or the connection still being made).
   */
  get waitingForConnection(): boolean {
    return this.controller === null && !this.#ended && this.abandonedBy === null;
  }

  /** Dispatch this attempt on the endpoint's pool. */
  send(): void {
    const call = this.call;
    call.current = this;
    call.exclude(this.endpoint);
    this.#rif = this.endpoint.load.start(this.startMs);
    const opts = call.opts;
    try {
      let headers = opts.headers;
      // The time this try may take goes with it, as gRPC sends grpc-timeout and Envoy
      // x-envoy-expected-rq-timeout-ms: a meshlet (or Envoy) on the other side keeps to it.
      const leftMs = Math.min(call.remainingMs(), call.perTryTimeoutMs > 0 ? call.perTryTimeoutMs : Infinity);
      if (leftMs !== Infinity) {
        // At least 1: Envoy reads 0 as no timeout at all (and under 1 ms left is not none).
        const v = String(Math.max(1, Math.floor(leftMs)));
        headers = withHeaders(headers, [DEADLINE_HEADER, v, ENVOY_TIMEOUT_HEADER, v]);
      }
      // The mesh decides the Host header, as a sidecar rewrites the authority: never the caller's.
      // The one the pool writes by itself costs undici nothing per request; any other is set.
      const ep = this.endpoint;
      const host = call.authority ?? (call.env.hostHeader === 'service' ? call.host : ep.authority);
      const pool = ep.poolFor(host);
      pool.dispatcher.dispatch(
        {
          ...opts,
          origin: ep.key,
          body: call.body as Dispatcher.DispatchOptions['body'],
          headers: hostHeadersOn(pool, host, headers),
        },
        this,
      );
    } catch (err) {
      // Only bad arguments throw synchronously: report them like any other failure.
      this.onResponseError(null, err as Error);
    }
  }

  #armPerTry(ms: number): void {
    this.#perTry = setTimeout(() => {
      this.#perTry = null;
      if (this.status !== 0 || this.#ended) return;
      this.perTryTimedOut = true;
      // Armed once the attempt started on a connection (onRequestStart): it has its controller.
      this.controller?.abort(new PerTryTimeoutError(this.call.env.service, ms, this.endpoint.key));
    }, ms);
    this.#perTry.unref?.();
  }

  #clearPerTry(): void {
    if (this.#perTry !== null) {
      clearTimeout(this.#perTry);
      this.#perTry = null;
    }
  }

  get #current(): boolean {
    return this.abandonedBy === null && this.call.counts(this);
  }

  /**
   * Stop this attempt because another answered first (a hedge race): its outcome is 'cancelled'
   * — blameless — and reaches no sink once the call no longer counts it. With no response yet,
   * the time it ran is a lower bound of the endpoint's latency, and is fed as a sample: an
   * endpoint whose attempts always lose must not look fast to a latency-aware balancer.
   */
  cancel(reason: Error): void {
    if (this.#ended) return;
    this.#cancelled = true;
    this.#clearPerTry();
    if (this.controller) this.controller.abort(reason);
    else {
      this.abandonedBy = reason;
      this.#fail(reason);
    }
  }

  /**
   * The request stops waiting for this attempt, still queued for a connection (its deadline ran
   * out, the caller aborted): the endpoint never got it, so its outcome is 'cancelled' — no
   * failure, no latency sample, nothing for outlier detection — and undici's request is aborted
   * if it ever starts. The sinks get `reason` as the attempt's error.
   */
  abandon(reason: Error): void {
    if (this.#ended) return;
    this.abandonedBy = reason;
    this.#fail(reason);
  }

  onRequestStart(controller: Controller): void {
    this.controller = controller;
    if (this.abandonedBy !== null) return controller.abort(this.abandonedBy);
    // The per-try timeout starts now that the attempt has its connection (Envoy's per_try_timeout).
    const perTryMs = this.call.perTryTimeoutMs;
    if (perTryMs > 0) this.#armPerTry(perTryMs);
    this.call.sink.attemptStarted(this, controller);
  }

  onRequestUpgrade(_controller: Controller, status: number, headers: Headers, socket: Duplex): void {
    this.#clearPerTry();
    this.#end(false);
    if (this.#current) this.call.sink.upgrade(this, status, headers, socket);
  }

  onResponseStarted(): void {
    this.call.handler.onResponseStarted?.();
  }

  onBodySent(chunk: Buffer): void {
    this.call.handler.onBodySent?.(chunk);
  }

  onRequestSent(): void {
    this.call.handler.onRequestSent?.();
  }

  onResponseStart(_controller: Controller, status: number, headers: Headers, message?: string): void {
    if (status >= 200 && this.status === 0) {
      this.#clearPerTry();
      this.status = status;
      const now = this.call.env.now();
      this.#headersMs = now - this.startMs;
      const kind = statusKind(status);
      this.endpoint.load.observeLatency(this.#headersMs, now, this.#rif, kind !== 'success');
      // A failing status is the outcome already. A good one is not until the body has arrived: a
      // response cut short after its headers is a failure (Envoy's router reports such upstream
      // resets to outlier detection), so its outcome waits for the end (or the error).
      if (kind !== 'success') this.#observe(kind, now);
      if (this.call.env.loadReports) this.call.env.loadReport(this.endpoint, headers, now, this.#rif);
    }
    if (this.#held || !this.#current) return;
    if (!this.call.sink.responseStart(this, status, headers, message)) this.#hold();
  }

  /**
   * A held-back response drained whole: its body and trailers (kept for the retry layer, which
   * hands them to the caller when its retry is not sent after all); null until then, or when the
   * drain failed (too large, too slow, cut short).
   */
  heldResponse(): { readonly body: readonly Buffer[]; readonly trailers: Headers } | null {
    return this.#heldTrailers === null ? null : { body: this.#heldBody ?? [], trailers: this.#heldTrailers };
  }

  /** The sink holds this response back (to retry): drain its body, within MAX_DRAIN_BYTES and MAX_DRAIN_MS. */
  #hold(): void {
    this.#held = true;
    this.#heldBody = [];
    this.controller?.resume(); // the drain is the mesh's, not the caller's: its pause does not hold it
    this.#drainTimer = setTimeout(() => {
      this.#drainTimer = null;
      if (!this.#ended) this.controller?.abort((this.#drainAbort = new Error('meshlet: held-back response body did not arrive in time to drain')));
    }, MAX_DRAIN_MS);
    this.#drainTimer.unref?.();
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    if (this.#held) {
      this.#drained += chunk.length;
      if (this.#drained > MAX_DRAIN_BYTES) controller.abort((this.#drainAbort = new Error('meshlet: held-back response too large to drain')));
      else this.#heldBody!.push(chunk);
      return;
    }
    if (this.#current) this.call.sink.responseData(this, chunk);
  }

  onResponseEnd(_controller: Controller, trailers: Headers): void {
    const kind = statusKind(this.status);
    if (this.status !== 0) this.#observe(kind, this.call.env.now());
    this.#end(kind !== 'success');
    if (this.#held) {
      this.#heldTrailers = trailers;
      this.call.sink.heldResponseDone(this);
    } else if (this.#current) this.call.sink.responseEnd(this, trailers);
  }

  onResponseError(_controller: Controller | null, error: Error): void {
    this.#clearPerTry();
    this.#fail(error); // a no-op for an attempt abandoned (and so already failed) before it started
  }

  #fail(error: Error): void {
    if (this.#ended) return;
    // After the headers the outcome is decided there: cut by the caller, the response counts as its status says.
    const failedAfterHeaders = this.status === 0 || this.#failedAfterHeaders(error);
    if (this.#held) {
      this.#end(true);
      this.call.sink.heldResponseDone(this);
      return;
    }
    const headersSent = this.status !== 0;
    // Cancelled (a hedge that lost), or abandoned before a connection took it: not the endpoint's doing.
    const abandoned = this.controller === null && this.abandonedBy !== null;
    const kind = this.#cancelled || abandoned ? 'cancelled' : headersSent ? 'reset' : this.call.kindOf(this, errorKind(error));
    const blameless = kind === 'cancelled' || kind === 'invalid';
    if (!headersSent) {
      // No response: count the time spent, with a floor, so a fast-failing endpoint never looks
      // fast to a latency-aware balancer.
      const now = this.call.env.now();
      if (!blameless) this.endpoint.load.observeFailure(now - this.startMs, now, this.#rif);
      else if (this.#cancelled) this.endpoint.load.observeLatency(now - this.startMs, now, this.#rif);
      this.#observed = true;
      this.call.env.observe(this.endpoint, kind, 0, now - this.startMs, now);
    }
    // The endpoint's failure count agrees with what its observers were told.
    this.#end(!blameless && failedAfterHeaders);
    if (this.call.counts(this)) this.call.sink.responseError(this, error, kind, headersSent);
  }

  /**
   * The response failed after its headers (a truncated body: the connection closed or reset, the
   * body timed out). Unless the caller (or we) stopped it, that is the endpoint failing — counted
   * by outlier detection and the breaker as a reset, and by the latency estimate as a failure, so a
   * replica that answers headers fast and then cuts every body short stops looking fast.
   * Returns whether the endpoint's books count it failed: not when the caller (or we) stopped a
   * good response, as its observers are told.
   */
  #failedAfterHeaders(error: Error): boolean {
    const now = this.call.env.now();
    const kind = this.#cancelled || error === this.#drainAbort ? 'cancelled' : this.call.kindOf(this, errorKind(error));
    if (kind === 'cancelled' || kind === 'invalid') {
      const status = statusKind(this.status);
      this.#observe(status, now); // the response was good as far as it went
      return status !== 'success';
    }
    if (!this.#observed) this.endpoint.load.observeFailure(now - this.startMs, now, this.#rif);
    this.#observe(kind, now);
    return true;
  }

  /** Report this attempt's outcome to the service's observers, once. */
  #observe(kind: AttemptOutcomeKind, now: number): void {
    if (this.#observed) return;
    this.#observed = true;
    this.call.env.observe(this.endpoint, kind, this.status, this.#headersMs, now);
  }

  #end(failed: boolean): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#drainTimer !== null) {
      clearTimeout(this.#drainTimer);
      this.#drainTimer = null;
    }
    this.endpoint.load.end(failed);
  }
}
