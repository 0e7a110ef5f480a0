/**
 * How a request looks to user interceptors: `MeshCall`, and `EndListener`, what runs when it
 * ends. The implementation is call.ts.
 */
import type { Dispatcher } from 'undici';

/** Something a layer wants run once when the request ends (give back a slot, stop a timer). */
export type EndListener = (call: MeshCall) => void;

/** The public view of a request, as user layers see it (see {@link Call}). */
export interface MeshCall {
  /** The service the request is addressed to. */
  readonly service: string;
  /**
   * The request (method, path, headers, body…) as dispatched, or — when its route rewrites the
   * path or edits the headers — as the endpoints get it. Do not mutate.
   */
  readonly opts: Dispatcher.DispatchOptions;
  /** The host the caller addressed (`orders`, `orders:8080`). */
  readonly host: string;
  /** The subset the route chose, or null for the whole service. */
  readonly subset: string | null;
  /** Index of the current attempt (0 = first try). */
  readonly attempt: number;
  /** True once the request ended or was aborted. */
  readonly done: boolean;
  /**
   * End the request with `error` (a MeshError is best; it reaches the caller as given). Anything
   * that is not an Error ends it with LAYER_FAILED (`layer: 'call.fail'`, the value as `cause`).
   */
  fail(error: Error): void;
  /**
   * Answer locally with `status` and a short body (default: the status's reason), sending nothing
   * upstream: as text/plain, or with `headers` (content-length is set for you). `status` is a
   * whole number from 200 to 599 (as Envoy's direct_response); any other ends the request with
   * LAYER_FAILED (`layer: 'call.respond'`).
   */
  respond(status: number, body?: string, headers?: Record<string, string | string[]>): void;
  /**
   * Run `listener` once when the request ends; read `status` / `error` there. One that throws is
   * skipped (the service warns once): the request ends as it would have.
   */
  onEnd(listener: EndListener): void;
  /** Final status (0 while running or after a failure with no response). */
  readonly status: number;
  /** The error the request ended with, if any. */
  readonly error: Error | undefined;
  /** The endpoint of the last attempt, if any was sent. */
  readonly endpoint: string | undefined;
  /**
   * True when the request body can be sent again: none, a string or bytes, or a streamed body
   * read to its end within `perRequestBufferLimitBytes` — until the request ends and the kept
   * bytes are dropped.
   */
  readonly replayable: boolean;
}
