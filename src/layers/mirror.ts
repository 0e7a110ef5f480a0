/**
 * The mirror layer (Istio's `mirror` and `mirrors`): each of a route's mirrors copies its share
 * of the route's requests, fire-and-forget, to a subset (or the whole service) — of this service,
 * or of another service of the mesh — with the Host header `<host>-shadow[:port]` as Envoy sends
 * it. A copy never slows or fails the caller: its response is dropped, its failure only counted
 * on the endpoint's books, and copies still running when the mesh closes are aborted: no copy
 * holds a close. A copy to this service goes straight to an endpoint (this layer cancels it at
 * close); one to another service enters that service's request path after its routes (its
 * limits, retry and health apply; its stats count it; its close cancels it). A request with a
 * streamed body is not mirrored (the body can be read once). On only when a route mirrors.
 */
import type { Dispatcher } from 'undici';
import type { Endpoint } from '../core/endpoint.js';
import { hostHeadersOn, withHost } from '../core/headers.js';
import type { Logger } from '../core/log.js';
import type { PickContext } from '../balancers/balancer.js';
import type { Target } from '../routing/target.js';
import type { Call } from '../request/call.js';
import type { Layer, Next } from '../request/layer.js';
import type { ParsedMirror } from './route-destinations.js';
import type { CrossServiceCounts, Handoff } from './forward.js';

const NO_SKIP: PickContext = { hash: undefined, attempt: 0, skip: () => false };

/** Takes a copy's response to another service and drops it: that service keeps its books. */
const DROP: Dispatcher.DispatchHandler = {
  onRequestStart() {},
  onResponseStart() {},
  onResponseData() {},
  onResponseEnd() {},
  onResponseError() {},
};

class MirrorHandler implements Dispatcher.DispatchHandler {
  #ended = false;
  #controller: Dispatcher.DispatchController | null = null;
  #cancelled = false;

  constructor(
    readonly endpoint: Endpoint,
    readonly inFlight: Set<MirrorHandler>,
  ) {
    inFlight.add(this);
  }
  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#cancelled) controller.abort(new Error('meshlet: mirror cancelled'));
  }
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
    this.endpoint.load.end(failed);
  }
}

export class MirrorLayer implements Layer {
  readonly name = 'mirror';
  readonly #byRoute: readonly (readonly ParsedMirror[])[];
  readonly #whole: Target;
  readonly #targets: ReadonlyMap<string, Target>;
  readonly #handoff: Handoff;
  readonly #counts: CrossServiceCounts;
  readonly #random: () => number;
  readonly #now: () => number;
  readonly #log: Logger;
  readonly #inFlight = new Set<MirrorHandler>();

  constructor(
    byRoute: readonly (readonly ParsedMirror[])[],
    whole: Target,
    targets: ReadonlyMap<string, Target>,
    elsewhere: { handoff: Handoff; counts: CrossServiceCounts },
    deps: { random: () => number; now: () => number; log: Logger },
  ) {
    this.#byRoute = byRoute;
    this.#whole = whole;
    this.#targets = targets;
    this.#handoff = elsewhere.handoff;
    this.#counts = elsewhere.counts;
    this.#random = deps.random;
    this.#now = deps.now;
    this.#log = deps.log;
  }

  static needed(byRoute: readonly (readonly ParsedMirror[])[]): boolean {
    return byRoute.some((m) => m.length > 0);
  }

  handle(call: Call, next: Next): void {
    const mirrors = call.routeIndex >= 0 ? this.#byRoute[call.routeIndex] : undefined;
    if (mirrors !== undefined) for (const m of mirrors) if (this.#random() * 100 < m.percent) this.#mirror(m, call);
    next(call);
  }

  #mirror(m: ParsedMirror, call: Call): void {
    const opts = call.opts;
    const host = call.authority ?? call.host;
    const body = opts.body;
    if (body != null && typeof body !== 'string' && !(body instanceof Uint8Array)) {
      this.#log.debug('request not mirrored: its body is streamed');
      return;
    }
    if (m.service !== null) {
      this.#counts.add(m.service);
      const shadow = shadowHost(host);
      this.#handoff.copy({ ...opts, headers: withHost(opts.headers, shadow) }, DROP, shadow, m.service, m.subset);
      return;
    }
    const target = m.subset === null ? this.#whole : this.#targets.get(m.subset)!;
    if (!this.#send(target, opts, host)) this.#log.debug('request not mirrored: no endpoint');
  }

  #send(target: Target, opts: Dispatcher.DispatchOptions, host: string): boolean {
    const picker = target.picker;
    if (picker === null) return false;
    const result = picker.pick(NO_SKIP);
    if (result.type !== 'pick') return false;
    const ep = result.endpoint;
    ep.load.start(this.#now());
    const handler = new MirrorHandler(ep, this.#inFlight);
    try {
      const shadow = shadowHost(host);
      const pool = ep.poolFor(shadow);
      pool.dispatcher.dispatch({ ...opts, origin: ep.key, headers: hostHeadersOn(pool, shadow, opts.headers) }, handler);
    } catch {
      handler.onResponseError();
      return false;
    }
    return true;
  }

  close(): void {
    for (const m of [...this.#inFlight]) m.cancel();
  }
}

/** The Host of a mirrored request, as Envoy writes it: `-shadow` after the host, before any port (`httpbin-shadow:8000`). */
export function shadowHost(host: string): string {
  const colon = host.lastIndexOf(':');
  if (colon > host.lastIndexOf(']') && /^\d+$/.test(host.slice(colon + 1))) return `${host.slice(0, colon)}-shadow${host.slice(colon)}`;
  return `${host}-shadow`;
}
