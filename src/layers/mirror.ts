/**
 * The mirror layer (Istio's `mirror` and `mirrors`): each of a route's mirrors copies its share
 * of the route's requests, fire-and-forget, to a subset (or the whole service) — of this service,
 * or of another service of the mesh — with the Host header `<host>-shadow[:port]` as Envoy sends
 * it. A copy never slows or fails the caller: its response is dropped, its failure only counted
 * on the endpoint's books, and copies still running when the mesh closes are aborted: no copy
 * holds a close. A request with a streamed body is not mirrored (the body can be read once).
 *
 * A copy has the route's timeout, as Envoy gives a shadow the route's (router.cc: the shadow's
 * `RequestOptions.setTimeout(timeout_.global_timeout_)`): the caller's own — the route's, else the
 * subset's, else the service's — else {@link MIRROR_TIMEOUT_MS}, so that a mirror target that
 * never answers holds nothing for ever.
 *
 * A copy to this service goes straight to an endpoint over the endpoint's mirror pool
 * (Endpoint.mirrorPool: its own connections, as Envoy sends a shadow over the mirror cluster's
 * pool), never over the pools callers take, and it is not one of the endpoint's or the service's
 * requests in flight: the balancers that read them (least-request, peak-EWMA, prequal, bounded
 * hashing) weigh the callers' load only, as an Envoy cluster's balancer counts its own hosts'
 * requests, not a mirror cluster's. It ends in the endpoint's `requests` (and `failures`). This
 * layer cancels it at close.
 *
 * A copy to another service enters that service's request path after its routes: it is that
 * service's request (its limits, retry, health, connections and in-flight counts — a mirror
 * cluster's own in Envoy; its stats count it; its close cancels it), with the sending route's
 * timeout as its deadline (that service's own timeout too: the earlier holds).
 * On only when a route mirrors.
 */
import type { Dispatcher } from 'undici';
import type { Endpoint, HostPool } from '../core/endpoint.js';
import { hostHeadersOn, withHost } from '../core/headers.js';
import type { Logger } from '../core/log.js';
import { MAX_TIMER_MS } from '../request/call-timers.js';
import type { PickContext } from '../balancers/balancer.js';
import type { Target } from '../routing/target.js';
import type { Call } from '../request/call.js';
import type { Layer, Next } from '../request/layer.js';
import type { ParsedMirror } from './route-destinations.js';
import type { CrossServiceCounts, Handoff } from './forward.js';

const NO_SKIP: PickContext = { hash: undefined, attempt: 0, skip: () => false };

/**
 * A copy's timeout when its route, subset and service set none: Envoy's default route timeout
 * (15 s). Istio turns the route timeout off, and Envoy's shadow then has none; here a copy that
 * never ends would hold its connection and its place in the mirror pool for ever.
 */
export const MIRROR_TIMEOUT_MS = 15_000;

/** The timeouts a caller's request has (the deadline layer's), for its copies. */
export interface MirrorTimeouts {
  readonly serviceMs: number;
  readonly bySubset: ReadonlyMap<Target, number>;
  /** By route index; undefined: the route sets none. */
  readonly byRoute: readonly (number | undefined)[];
}

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
  #timer: NodeJS.Timeout | null = null;

  constructor(
    readonly endpoint: Endpoint,
    readonly inFlight: Set<MirrorHandler>,
    timeoutMs: number,
  ) {
    inFlight.add(this);
    // Never keeps the process alive: the copy's socket does while it runs.
    this.#timer = setTimeout(() => this.cancel('timed out'), Math.min(timeoutMs, MAX_TIMER_MS));
    this.#timer.unref?.();
  }
  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#cancelled) controller.abort(new Error('meshlet: mirror cancelled'));
  }
  /** Abort the copy (one still queued in the pool is aborted as it starts). */
  cancel(why = 'cancelled'): void {
    if (this.#ended) return;
    this.#cancelled = true;
    this.#controller?.abort(new Error(`meshlet: mirror ${why}`));
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
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.inFlight.delete(this);
    this.endpoint.load.ended(failed);
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
  readonly #log: Logger;
  readonly #timeouts: MirrorTimeouts;
  readonly #inFlight = new Set<MirrorHandler>();

  constructor(
    byRoute: readonly (readonly ParsedMirror[])[],
    whole: Target,
    targets: ReadonlyMap<string, Target>,
    elsewhere: { handoff: Handoff; counts: CrossServiceCounts },
    timeouts: MirrorTimeouts,
    deps: { random: () => number; log: Logger },
  ) {
    this.#byRoute = byRoute;
    this.#timeouts = timeouts;
    this.#whole = whole;
    this.#targets = targets;
    this.#handoff = elsewhere.handoff;
    this.#counts = elsewhere.counts;
    this.#random = deps.random;
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
    const timeoutMs = this.#timeoutOf(call);
    if (m.service !== null) {
      this.#counts.add(m.service);
      const shadow = shadowHost(host);
      this.#handoff.copy({ ...opts, headers: withHost(opts.headers, shadow) }, DROP, shadow, m.service, m.subset, timeoutMs);
      return;
    }
    const target = m.subset === null ? this.#whole : this.#targets.get(m.subset)!;
    if (!this.#send(target, opts, host, timeoutMs)) this.#log.debug('request not mirrored: no endpoint');
  }

  /** The caller's timeout (the deadline layer's: route, subset, service), else {@link MIRROR_TIMEOUT_MS}. */
  #timeoutOf(call: Call): number {
    const t = this.#timeouts;
    const ms = t.byRoute[call.routeIndex] ?? t.bySubset.get(call.target) ?? t.serviceMs;
    return ms > 0 ? ms : MIRROR_TIMEOUT_MS;
  }

  #send(target: Target, opts: Dispatcher.DispatchOptions, host: string, timeoutMs: number): boolean {
    const picker = target.picker;
    if (picker === null) return false;
    const result = picker.pick(NO_SKIP);
    if (result.type !== 'pick') return false;
    const ep = result.endpoint;
    const shadow = shadowHost(host);
    let pool: HostPool | null;
    try {
      pool = ep.mirrorPool(shadow);
    } catch {
      return false; // the service was cut off: nothing more is sent
    }
    if (pool === null) return false; // the endpoint is closing
    const handler = new MirrorHandler(ep, this.#inFlight, timeoutMs);
    try {
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
