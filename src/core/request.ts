/**
 * One request through a service: the controller the caller's handler holds, and the attempt that
 * carries it to an endpoint.
 *
 * The caller's handler gets *this* object as its controller as soon as the request is dispatched,
 * so it can abort or pause before an endpoint is chosen (while discovery is still answering, or
 * between attempts). Abort and pause are forwarded to whichever attempt is current — the controller
 * proxy undici's RetryHandler keeps so back-pressure survives a retry. Each attempt is a small
 * handler of its own; callbacks from a superseded attempt are ignored.
 */
import type { Dispatcher } from 'undici';
import type { Endpoint } from './endpoint.js';
import type { PickContext } from '../balancers/balancer.js';
import type { Service } from './service.js';
import { TimeoutError, isMeshError, type MeshError } from './errors.js';

type Handler = Dispatcher.DispatchHandler;
type Controller = Dispatcher.DispatchController;
type Headers = Record<string, string | string[] | undefined>;

export class MeshRequest implements Controller, PickContext {
  readonly opts: Dispatcher.DispatchOptions;
  /** Host header value the caller addressed (`orders`, `orders:8080`). */
  readonly host: string;
  hash: number | undefined = undefined;
  attempt = 0;

  readonly #handler: Handler;
  readonly #service: Service;
  #tried: Endpoint[] | null = null;
  #current: Attempt | null = null;
  #done = false;
  #aborted = false;
  #reason: Error | null = null;
  #paused = false;
  #timer: NodeJS.Timeout | null = null;

  constructor(service: Service, opts: Dispatcher.DispatchOptions, handler: Handler, host: string) {
    this.#service = service;
    this.opts = opts;
    this.#handler = handler;
    this.host = host;
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
    return this.#current?.controller?.rawHeaders;
  }
  get rawTrailers(): Controller['rawTrailers'] {
    return this.#current?.controller?.rawTrailers;
  }

  abort(reason: Error): void {
    if (this.#done || this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
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
    const tried = this.#tried;
    return tried !== null && tried.includes(endpoint);
  }

  // ===== lifecycle, driven by the service =====

  /** Hand the caller its controller and arm the deadline. Returns false if the caller aborted at once. */
  start(timeoutMs: number): boolean {
    this.#handler.onRequestStart?.(this, null);
    if (this.#aborted) return false;
    if (timeoutMs > 0) {
      this.#timer = setTimeout(() => {
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
  send(endpoint: Endpoint, startMs: number): void {
    const attempt = new Attempt(this, endpoint, startMs);
    this.#current = attempt;
    endpoint.onStart();
    const opts = this.#service.endpointOptions(this, endpoint);
    try {
      endpoint.dispatcher.dispatch(opts, attempt);
    } catch (err) {
      // Only bad arguments throw synchronously: report them like any other failure.
      attempt.onResponseError(null, err as Error);
    }
  }

  /** End the request with `error` (no attempt running, or the attempt's error is final). */
  fail(error: Error): void {
    if (this.#done) return;
    this.#done = true;
    this.#clearTimer();
    if (isMeshError(error) && error.attempts === undefined && this.attempt > 0) {
      (error as { attempts: number | undefined }).attempts = this.attempt + 1;
    }
    this.#handler.onResponseError?.(this, error);
  }

  #clearTimer(): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
  }

  // ===== callbacks from the current attempt =====

  /** @internal */
  attemptStarted(attempt: Attempt, controller: Controller): void {
    if (attempt !== this.#current || this.#done) {
      controller.abort(this.#reason ?? new Error('meshlet: attempt superseded'));
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
    this.#handler.onResponseEnd?.(this, trailers);
  }

  /** @internal */
  responseError(attempt: Attempt, error: Error): void {
    if (attempt !== this.#current || this.#done) return;
    this.fail(this.#aborted && this.#reason ? this.#reason : annotate(error, this.#service.name, attempt.endpoint, this.attempt + 1));
  }

  /** @internal */
  upgrade(attempt: Attempt, status: number, headers: Headers, socket: import('node:stream').Duplex): void {
    if (attempt !== this.#current || this.#done) return;
    this.#done = true;
    this.#clearTimer();
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

/** One try of a request against one endpoint: the handler undici's pool calls. */
export class Attempt implements Handler {
  readonly request: MeshRequest;
  readonly endpoint: Endpoint;
  readonly startMs: number;
  controller: Controller | null = null;
  status = 0;
  #ended = false;

  constructor(request: MeshRequest, endpoint: Endpoint, startMs: number) {
    this.request = request;
    this.endpoint = endpoint;
    this.startMs = startMs;
  }

  onRequestStart(controller: Controller): void {
    this.controller = controller;
    this.request.attemptStarted(this, controller);
  }

  onRequestUpgrade(_controller: Controller, status: number, headers: Headers, socket: import('node:stream').Duplex): void {
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

  onResponseStart(_controller: Controller, status: number, headers: Headers, message?: string): void {
    if (status >= 200 && this.status === 0) {
      this.status = status;
      this.endpoint.observeLatency(this.request.service.now() - this.startMs, this.request.service.now());
    }
    this.request.responseStart(this, status, headers, message);
  }

  onResponseData(_controller: Controller, chunk: Buffer): void {
    this.request.responseData(this, chunk);
  }

  onResponseEnd(_controller: Controller, trailers: Headers): void {
    this.#end(this.status >= 500);
    this.request.responseEnd(this, trailers);
  }

  onResponseError(_controller: Controller | null, error: Error): void {
    if (this.status === 0) {
      // No response: a failed connect, a reset, a timeout. Count the time spent, with a floor, so a
      // fast-failing endpoint never looks fast to a latency-aware balancer.
      const now = this.request.service.now();
      this.endpoint.observeFailure(now - this.startMs, now);
    }
    this.#end(true);
    this.request.responseError(this, error);
  }

  #end(failed: boolean): void {
    if (this.#ended) return;
    this.#ended = true;
    this.endpoint.onEnd(failed);
  }
}
