/**
 * One try of a request against one endpoint: the handler undici's pool calls. It records the
 * endpoint's books (in-flight, latency, outcome for the health model), holds a retriable response
 * back (draining its body) while the request decides, times the try out (`perTryTimeout`), and
 * passes everything else to its MeshRequest, which ignores callbacks from superseded attempts.
 */
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Endpoint } from '../core/endpoint.js';
import type { MeshRequest } from './call.js';
import { PerTryTimeoutError } from '../core/errors.js';
import { statusKind } from '../health/outcome.js';

type Handler = Dispatcher.DispatchHandler;
type Controller = Dispatcher.DispatchController;
type Headers = Record<string, string | string[] | undefined>;

/** Most bytes of a held-back (retriable) response body drained before the connection is dropped instead. */
const MAX_DRAIN_BYTES = 64 * 1024;

/** Why an attempt is being retried; rejected into p-retry. */
export class RetriableFailure extends Error {
  constructor(
    readonly reason: string,
    readonly delayFloorMs: number,
  ) {
    super(reason);
  }
}

/** One try of a request against one endpoint: the handler undici's pool calls. */
export class Attempt implements Handler {
  readonly request: MeshRequest;
  readonly endpoint: Endpoint;
  readonly startMs: number;
  controller: Controller | null = null;
  /** Final status (≥ 200) once response headers arrived, else 0. */
  status = 0;
  /** Set when this attempt's response is held back for a retry. */
  retryFailure: RetriableFailure | null = null;
  perTryTimedOut = false;
  /** Set when the request stopped waiting for this attempt (per-try timeout before it started). */
  abandonedBy: Error | null = null;
  #drained = 0;
  #ended = false;
  #perTry: NodeJS.Timeout | null = null;

  constructor(request: MeshRequest, endpoint: Endpoint, startMs: number) {
    this.request = request;
    this.endpoint = endpoint;
    this.startMs = startMs;
  }

  armPerTryTimeout(ms: number, service: string): void {
    this.#perTry = setTimeout(() => {
      this.#perTry = null;
      if (this.status !== 0 || this.#ended) return;
      this.perTryTimedOut = true;
      const err = new PerTryTimeoutError(service, ms, this.endpoint.key);
      if (this.controller) this.controller.abort(err);
      else {
        // Still queued for a connection: stop waiting for it; abort it if it ever starts.
        this.abandonedBy = err;
        this.#fail(err);
      }
    }, ms);
    this.#perTry.unref?.();
  }

  #clearPerTry(): void {
    if (this.#perTry !== null) {
      clearTimeout(this.#perTry);
      this.#perTry = null;
    }
  }

  onRequestStart(controller: Controller): void {
    this.controller = controller;
    this.request.attemptStarted(this, controller);
  }

  onRequestUpgrade(_controller: Controller, status: number, headers: Headers, socket: Duplex): void {
    this.#clearPerTry();
    this.#end(false);
    this.request.upgrade(this, status, headers, socket);
  }

  onResponseStarted(): void {
    this.request.handler.onResponseStarted?.();
  }

  onBodySent(chunk: Buffer): void {
    this.request.handler.onBodySent?.(chunk);
  }

  onRequestSent(): void {
    this.request.handler.onRequestSent?.();
  }

  onResponseStart(controller: Controller, status: number, headers: Headers, message?: string): void {
    if (status >= 200 && this.status === 0) {
      this.#clearPerTry();
      this.status = status;
      const service = this.request.service;
      const now = service.now();
      this.endpoint.observeLatency(now - this.startMs, now);
      service.recordOutcome(this.endpoint, statusKind(status), status, now - this.startMs);
      if (this.request.holdForRetry(this, status, headers)) return;
    }
    if (this.retryFailure !== null) return;
    this.request.responseStart(this, status, headers, message);
    void controller;
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    if (this.retryFailure !== null) {
      this.#drained += chunk.length;
      if (this.#drained > MAX_DRAIN_BYTES) controller.abort(this.retryFailure);
      return;
    }
    this.request.responseData(this, chunk);
  }

  onResponseEnd(_controller: Controller, trailers: Headers): void {
    this.#end(this.status >= 500);
    if (this.retryFailure !== null) {
      this.request.heldResponseDone(this);
      return;
    }
    this.request.responseEnd(this, trailers);
  }

  onResponseError(_controller: Controller | null, error: Error): void {
    this.#clearPerTry();
    if (this.abandonedBy !== null) {
      // The request moved on already; only the endpoint's books need closing.
      this.#end(true);
      return;
    }
    this.#fail(error);
  }

  #fail(error: Error): void {
    if (this.#ended) return;
    if (this.retryFailure !== null) {
      this.#end(true);
      this.request.heldResponseDone(this);
      return;
    }
    const headersSent = this.status !== 0;
    const kind = headersSent ? 'reset' : this.request.kindOf(this, error);
    if (!headersSent) {
      // No response: count the time spent, with a floor, so a fast-failing endpoint never looks
      // fast to a latency-aware balancer.
      const service = this.request.service;
      const now = service.now();
      const blameless = kind === 'cancelled' || kind === 'invalid';
      if (!blameless) this.endpoint.observeFailure(now - this.startMs, now);
      service.recordOutcome(this.endpoint, kind, 0, now - this.startMs);
    }
    if (this.abandonedBy === null) this.#end(kind !== 'cancelled' && kind !== 'invalid');
    this.request.responseError(this, error, kind, headersSent);
  }

  #end(failed: boolean): void {
    if (this.#ended) return;
    this.#ended = true;
    this.endpoint.onEnd(failed);
  }
}
