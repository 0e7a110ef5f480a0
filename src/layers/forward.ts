/**
 * The forward layer: a request whose route sends it to another service of the mesh is handed over
 * to that service here — after this route's fault and mirrors, as Envoy applies a route's filters
 * before its cluster. From then on the request is the other service's: its endpoints, balancer,
 * limits, health, TLS, retry and timeout (the route's own retry and timeout, when it sets them,
 * still win). That service's routes are not consulted, so a request makes one hop at most, as
 * Envoy's route to another cluster: routes that send A to B and B to A cannot loop.
 * On only when a route of the service names another service.
 */
import type { Dispatcher } from 'undici';
import type { Call } from '../request/call.js';
import type { Layer, Next } from '../request/layer.js';
import type { ParsedDestination } from './route-destinations.js';

/** What a service offers the forward and mirror layers: the other services of its mesh. */
export interface Handoff {
  /** Hand `call` over to `service` (its subset `subset`, or the whole), as routed by this service's route `routeIndex`. */
  send(call: Call, service: string, subset: string | null, routeIndex: number): void;
  /**
   * Send a copy (a mirror) to `service` (its subset, or the whole) with this handler, which ignores
   * what comes back, and a deadline `timeoutMs` away; that service keeps the copy's books and ends
   * it when it closes.
   */
  copy(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler, host: string, service: string, subset: string | null, timeoutMs: number): void;
}

/** Requests handed to other services, by service name (stats `routedTo`, `mirroredTo`). */
export class CrossServiceCounts {
  readonly #counts = new Map<string, number>();
  add(service: string): void {
    this.#counts.set(service, (this.#counts.get(service) ?? 0) + 1);
  }
  toJSON(): Record<string, number> {
    return Object.fromEntries(this.#counts);
  }
}

export class ForwardLayer implements Layer {
  readonly name = 'forward';
  readonly #handoff: Handoff;
  readonly #counts: CrossServiceCounts;

  constructor(handoff: Handoff, counts: CrossServiceCounts) {
    this.#handoff = handoff;
    this.#counts = counts;
  }

  /** True when a route of `routes` sends requests to another service. */
  static needed(routes: readonly { readonly destinations: readonly ParsedDestination[] }[]): boolean {
    return routes.some((r) => r.destinations.some((d) => d.service !== null));
  }

  handle(call: Call, next: Next): void {
    const to = call.forward;
    if (to === null || to.service === null) return next(call);
    call.forward = null;
    this.#counts.add(to.service);
    this.#handoff.send(call, to.service, to.subset, call.routeIndex);
  }
}
