/**
 * The deadline layer: the request's whole time limit (all attempts, until the response ends) —
 * the route's `timeout`, else the subset's, else the service's. When it runs out the request is
 * aborted with TIMEOUT. An attempt that started on a connection and has no response headers yet
 * counts as a timeout against its endpoint (Envoy's router reports a global timeout to outlier
 * detection for the upstream requests awaiting headers); one still queued for a connection
 * counts against no endpoint (Envoy reports none for a request its pool never gave a
 * connection), and the error says it waited for one. On only when some timeout is set.
 */
import { TimeoutError } from '../core/errors.js';
import type { Target } from '../routing/target.js';
import type { Call } from '../request/call.js';
import type { Layer, Next } from '../request/layer.js';

export class DeadlineLayer implements Layer {
  readonly name = 'deadline';
  readonly #service: string;
  readonly #serviceMs: number;
  readonly #bySubset: ReadonlyMap<Target, number>;
  readonly #byRoute: readonly (number | undefined)[];

  /**
   * @param bySubset timeouts of subsets that set one
   * @param byRoute timeouts of routes, by route index (undefined = not set)
   */
  constructor(service: string, serviceMs: number, bySubset: ReadonlyMap<Target, number>, byRoute: readonly (number | undefined)[]) {
    this.#service = service;
    this.#serviceMs = serviceMs;
    this.#bySubset = bySubset;
    this.#byRoute = byRoute;
  }

  /** True when any timeout is set (else the layer is left out). */
  static needed(serviceMs: number, bySubset: ReadonlyMap<Target, number>, byRoute: readonly (number | undefined)[]): boolean {
    return serviceMs > 0 || [...bySubset.values()].some((ms) => ms > 0) || byRoute.some((ms) => ms !== undefined && ms > 0);
  }

  handle(call: Call, next: Next): void {
    const ms = (call.routeIndex >= 0 ? this.#byRoute[call.routeIndex] : undefined) ?? this.#bySubset.get(call.target) ?? this.#serviceMs;
    if (ms > 0) {
      call.setDeadline(ms, () => {
        const a = call.current;
        const waitedMs = a !== null && a.waitingForConnection ? call.env.now() - a.startMs : undefined;
        return new TimeoutError(this.#service, ms, { attempts: call.attempt + 1, endpoint: call.endpoint }, waitedMs);
      });
    }
    next(call);
  }
}
