/**
 * The layer contract: one step of a service's request path (layers/, and users' interceptors).
 *
 * A layer is built once per service — or not at all, when the service does not configure it, so
 * the hot path pays only for what is on. Per request, `handle(call, next)` either passes the call
 * on with `next(call)` (now, or later: after a wait, a queue, a back-off) or ends it
 * (`call.fail`, `call.respond`). To see how a request ends, a layer registers `call.onEnd`; to see
 * each attempt's response before the caller does, it wraps `call.sink` (as the retry layer does —
 * undici's interceptors wrap handlers the same way). A layer never reaches back into the service:
 * what it needs is given to it when it is built.
 *
 * Models: undici's `Dispatcher.compose` (an interceptor is a function from dispatch to dispatch)
 * and tower's `Layer`/`Service`.
 */
import { LayerFailedError } from '../core/errors.js';
import type { MeshEvents } from '../core/events.js';
import type { Logger } from '../core/log.js';
import type { Call, MeshCall } from './call.js';

/** Passes a call to the rest of the pipeline. */
export type Next = (call: Call) => void;

/** Counters a layer adds to `mesh.stats()`'s service entry (summed over layers), and the service circuit's state. */
export interface LayerStats {
  /** Retries sent. */
  retries: number;
  /** Retries refused because the retry budget was spent. */
  retryBudgetExhausted: number;
  /** Hedges sent: copies of a request that was still outstanding after the hedge delay. */
  hedges: number;
  /** Requests whose response came from a hedge rather than the first copy. */
  hedgesWon: number;
  /** Hedges not sent because the hedge budget was spent. */
  hedgeBudgetExhausted: number;
  /** Requests refused by the rate limits, and retries every endpoint's rate limit refused: one per `rate-limited` event. */
  rateLimited: number;
  /** Requests refused by the concurrency limits (OVERLOADED), and retries refused by `limits.maxRetries`: one per `overloaded` event. */
  overloaded: number;
  /** Requests waiting for a concurrency slot now: the service's or a subset's (not one aborted while it waited). */
  pending: number;
  /** Requests the service's own circuit refused with CIRCUIT_OPEN (`serviceBreaker`). */
  shortCircuited: number;
  /** The service's own circuit (serviceBreaker); not a counter. */
  serviceCircuit: 'closed' | 'open' | 'half-open';
  /** In-flight slots the service allows now: `limits.maxRequests`, or the adaptive limit when lower; not a counter. */
  concurrencyLimit: number;
}

/** A built-in layer. */
export interface Layer {
  readonly name: string;
  handle(call: Call, next: Next): void;
  /** The service is closing: end every call waiting here with `error()` and stop timers. */
  close?(error: () => Error): void;
  /** Counters merged into the service's stats. */
  stats?(): Partial<LayerStats>;
}

/** What a user interceptor's factory is given for the service it is built for. */
export interface LayerContext {
  readonly service: string;
  readonly events: MeshEvents;
  readonly log: Logger;
  readonly now: () => number;
  readonly random: () => number;
}

/**
 * A user-supplied layer, with the same contract as the built-ins (seen through the public
 * {@link MeshCall}). It runs after routing and the deadline are set and before the rate and
 * concurrency limits.
 */
export interface Interceptor {
  readonly name: string;
  /** May be `async`: what it returns is ignored, but a promise that rejects ends the call with LAYER_FAILED, as a throw does. */
  handle(call: MeshCall, next: (call: MeshCall) => void): void;
  /** The mesh is closing. */
  close?(): void;
}

/** Builds an interceptor for one service; return null to leave that service alone. */
export type InterceptorFactory = (ctx: LayerContext) => Interceptor | null;

/**
 * Chain `layers` in order, ending in `terminal`. Runs once per service, never per request. A layer
 * that throws ends the call with LAYER_FAILED (the innermost step that threw catches it), so a
 * broken interceptor cannot leave a request hanging — now or when a wait, queue or back-off goes on.
 * So does one whose `handle` returns a promise that rejects (an `async handle`): what a `handle`
 * returns is otherwise ignored, a promise that resolves included.
 */
export function compose(layers: readonly Layer[], terminal: Next, service: string): Next {
  let next: Next = guarded(service, 'pick', terminal);
  for (let i = layers.length - 1; i >= 0; i--) {
    const layer = layers[i]!;
    const inner = next;
    next = guarded(service, layer.name, (call) => layer.handle(call, inner));
  }
  return next;
}

function guarded(service: string, name: string, step: (call: Call) => unknown): Next {
  return (call) => {
    try {
      const r = step(call);
      // Almost always undefined: one type check. A thenable is an async handle, whose throw is a rejection.
      if (typeof r === 'object' && r !== null && typeof (r as PromiseLike<unknown>).then === 'function') failOnRejection(service, name, call, r as PromiseLike<unknown>);
    } catch (err) {
      call.fail(new LayerFailedError(service, name, err));
    }
  };
}

/** End `call` with LAYER_FAILED if `p` rejects (a no-op once it has ended); the rejection is handled, never unhandled. */
function failOnRejection(service: string, name: string, call: Call, p: PromiseLike<unknown>): void {
  p.then(undefined, (err: unknown) => call.fail(new LayerFailedError(service, name, err)));
}

/** A user interceptor as a layer. */
export function fromInterceptor(i: Interceptor): Layer {
  return {
    name: i.name,
    handle: (call, next) => i.handle(call, next as (call: MeshCall) => void),
    ...(i.close ? { close: () => i.close!() } : {}),
  };
}
