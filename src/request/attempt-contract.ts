/**
 * What an attempt (request/attempt.ts) reports to and needs from its request: the sink that gets
 * its callbacks (the call, or a layer wrapping it — the retry layer holds back what it will
 * retry, as undici's RetryHandler does), and the request's side (request/call.ts implements it).
 * Apart from attempt.ts so that the contract reads on its own; `A` is the attempt type
 * (attempt.ts's Attempt), a parameter so this file need not import it.
 */
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Endpoint } from '../core/endpoint.js';
import type { AttemptOutcomeKind } from '../health/outcome.js';

type Controller = Dispatcher.DispatchController;
type Headers = Record<string, string | string[] | undefined>;

/** Where an attempt reports: the call (forward to the caller), or a layer wrapping it (retry). */
export interface AttemptSink<A> {
  attemptStarted(attempt: A, controller: Controller): void;
  /** Response headers (or a 1xx). Return false to hold the response back: its body is drained, then `heldResponseDone`. */
  responseStart(attempt: A, status: number, headers: Headers, message: string | undefined): boolean;
  responseData(attempt: A, chunk: Buffer): void;
  responseEnd(attempt: A, trailers: Headers): void;
  /** The attempt failed: with no response when `headersSent` is false. */
  responseError(attempt: A, error: Error, kind: AttemptOutcomeKind, headersSent: boolean): void;
  /** A held-back response was drained (or failed while draining). */
  heldResponseDone(attempt: A): void;
  upgrade(attempt: A, status: number, headers: Headers, socket: Duplex): void;
}

/** What an attempt needs of its request (request/call.ts implements it). */
export interface AttemptCall<A> {
  readonly env: {
    readonly service: string;
    readonly now: () => number;
    readonly hostHeader: 'service' | 'endpoint';
    observe(endpoint: Endpoint, kind: AttemptOutcomeKind, status: number, latencyMs: number, nowMs: number): void;
    readonly loadReports: boolean;
    loadReport(endpoint: Endpoint, headers: Headers, nowMs: number, sentRif: number): void;
  };
  readonly opts: Dispatcher.DispatchOptions;
  readonly host: string;
  /** The Host header the route sets, or null. */
  readonly authority: string | null;
  /** The body to send (a guard around a streamed one). */
  readonly body: unknown;
  readonly perTryTimeoutMs: number;
  /** Time left before the request's deadline, ms (Infinity without one). */
  remainingMs(): number;
  readonly sink: AttemptSink<A>;
  /** The clock reading of the pick that chose this attempt's endpoint: when the attempt starts. */
  readonly nowMs: number;
  current: A | null;
  /** True when the attempt's callbacks count (the current one, or a hedge racing it). */
  counts(attempt: A): boolean;
  /** The caller's handler, for undici's progress callbacks. */
  readonly handler: Dispatcher.DispatchHandler;
  exclude(endpoint: Endpoint): void;
  /** The outcome class of a failure with no response, knowing the request's own state. */
  kindOf(attempt: A, kind: AttemptOutcomeKind): AttemptOutcomeKind;
}
