/**
 * Mirroring (Istio's `mirror`): a copy of a request sent to another subset, fire and forget. The
 * caller never waits for it and never sees its outcome; the copy's Host gets Envoy's `-shadow`
 * suffix so the receiver can tell. Only requests whose body can be sent twice (none, string,
 * bytes) are mirrored — a streamed body belongs to the real request.
 */
import type { Dispatcher } from 'undici';
import type { Endpoint } from '../core/endpoint.js';
import { withHost } from '../core/headers.js';
import type { PickContext } from '../balancers/balancer.js';

const NO_SKIP: PickContext = { hash: undefined, attempt: 0, skip: () => false };

/** Mirror copies still in flight, so closing the service can abort them (shadow traffic never holds a close). */
export type MirrorSet = Set<MirrorHandler>;

/** Discards the mirrored response; closes the endpoint's books when it ends. */
export class MirrorHandler implements Dispatcher.DispatchHandler {
  #ended = false;
  #controller: Dispatcher.DispatchController | null = null;
  #cancelled = false;
  constructor(
    readonly endpoint: Endpoint,
    readonly inFlight: MirrorSet,
  ) {
    inFlight.add(this);
  }
  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#cancelled) controller.abort(new Error('meshlet: mirror cancelled'));
  }
  /** Abort the copy (service closing). */
  cancel(): void {
    this.#cancelled = true;
    this.#controller?.abort(new Error('meshlet: mirror cancelled'));
  }
  onResponseStart(): void {}
  onResponseData(): void {}
  onResponseEnd(): void {
    this.#end(false);
  }
  onResponseError(): void {
    this.#end(true);
  }
  #end(failed: boolean): void {
    if (this.#ended) return;
    this.#ended = true;
    this.inFlight.delete(this);
    this.endpoint.onEnd(failed);
  }
}

/** Send a mirror copy of `opts` through `picker`; returns false when it could not be sent. */
export function sendMirror(
  picker: { pick(ctx: PickContext): { type: string; endpoint?: Endpoint } } | null,
  opts: Dispatcher.DispatchOptions,
  host: string,
  inFlight: MirrorSet,
): boolean {
  const body = opts.body;
  if (body != null && typeof body !== 'string' && !(body instanceof Uint8Array)) return false;
  if (picker === null) return false;
  const result = picker.pick(NO_SKIP);
  if (result.type !== 'pick' || result.endpoint === undefined) return false;
  const ep = result.endpoint;
  ep.onStart(performance.now());
  const handler = new MirrorHandler(ep, inFlight);
  try {
    ep.dispatcher.dispatch({ ...opts, origin: ep.key, headers: withHost(stripHost(opts.headers), `${host}-shadow`) }, handler);
  } catch {
    handler.onResponseError();
    return false;
  }
  return true;
}

function stripHost(headers: Dispatcher.DispatchOptions['headers']): Dispatcher.DispatchOptions['headers'] {
  if (headers == null || Array.isArray(headers) || typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') return headers;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() !== 'host') out[k] = v;
  return out as Dispatcher.DispatchOptions['headers'];
}
