/**
 * Typed events. Subscribe with `mesh.on(name, listener)`, which returns `{ dispose() }`; every
 * event is also published on `node:diagnostics_channel` as `meshlet:<name>` (as undici publishes
 * its own), so tooling can observe a mesh it did not create. Payloads never carry secrets.
 */
import diagnostics from 'node:diagnostics_channel';

/** Every event meshlet emits, by name, with its payload. */
export interface MeshEventMap {
  /** An endpoint was ejected (outlier detection, open circuit) for `durationMs`. */
  ejection: { service: string; endpoint: string; reason: string; durationMs: number; ejections: number };
  /** An ejected endpoint became available again (probe succeeded, or ejection time ran out). */
  unejection: { service: string; endpoint: string; reason: string };
  /**
   * A circuit changed state, `from -> to` (`closed`, `open`, `half-open`): an endpoint's, or with
   * `endpoint: '*'` the service's own circuit (`serviceBreaker`).
   */
  circuit: { service: string; endpoint: string; from: string; to: string };
  /**
   * An active health check changed an endpoint's health; `detail` is what the last check saw:
   * `status 503`, `timeout after 1000 ms` (no whole answer in time), the error's code
   * (`ECONNREFUSED`) or name, or `status 200, body failed: UND_ERR_SOCKET` (the body was cut short).
   */
  'health-check': { service: string; endpoint: string; healthy: boolean; detail: string };
  /**
   * A failed attempt (at `endpoint`) was retried: attempt number `attempt` is being sent now, after
   * a back-off of `delayMs`. Emitted when the retry is sent, not when it is decided: a request that
   * ends during the back-off (its caller, its deadline, the mesh closing) emits none.
   */
  retry: { service: string; endpoint: string; attempt: number; delayMs: number; reason: string };
  /** A retry was refused because its policy's retry budget (the service's, a subset's or a route's) is spent. */
  'retry-budget-exhausted': { service: string; endpoint: string; reason: string };
  /**
   * A hedge was sent: the request had been outstanding `delayMs` at `endpoint` (the copy that
   * was too slow) and a copy, attempt number `attempt`, went to another endpoint.
   */
  hedge: { service: string; endpoint: string; attempt: number; delayMs: number };
  /** A hedge was not sent because the hedge budget is spent. */
  'hedge-budget-exhausted': { service: string; endpoint: string };
  /** A request was refused by a rate limit — or a retry, by every endpoint's (the caller got what would have been retried). */
  'rate-limited': { service: string; scope: string };
  /**
   * A concurrency limit refused a request (it failed with OVERLOADED) or a retry (the caller got
   * the response that would have been retried). `limit` names it: `maxPendingRequests` (queue
   * full), `maxQueueTimeMs` (waited too long), `maxRetries`, or `subset <name>` (a subset's own
   * limits). Each one is also counted in `mesh.stats()`'s `overloaded`.
   */
  overloaded: { service: string; limit: string };
  /**
   * The adaptive concurrency limit (`limits.adaptive`) in force — the algorithm's, capped by
   * `maxRequests`, as `stats().concurrencyLimit` shows it — moved by at least 10 % since the last
   * such event (or the start): from `previous` to `limit` slots, on a window of samples whose mean
   * latency was `latencyMs`. The algorithm moving above the cap changes nothing in force: no event.
   */
  'concurrency-limit': { service: string; algorithm: string; limit: number; previous: number; latencyMs: number };
  /** An inbound entry point (`mesh.inbound`, …) refused a request: 429 from its rate limit, 503 from its concurrency limit. */
  'inbound-refused': { entry: string; status: number; limit: string };
  /**
   * The mesh's drain (`mesh.drain`) moved on: `started` (readiness fails, responses get
   * `Connection: close`), `idle` (no request in flight, or the grace ran out with `inFlight` left),
   * `closed` (outbound pools closed too).
   */
  drain: { phase: 'started' | 'idle' | 'closed'; inFlight: number };
  /** Discovery pushed a new endpoint set. */
  'discovery-update': { service: string; endpoints: number; added: number; removed: number };
  /** Discovery failed; the last good set was kept. */
  'discovery-error': { service: string; message: string };
  /**
   * Live Istio config (`istio`) was applied: the resources in force — each by kind, namespace,
   * name and resourceVersion — and the services they make, after a list or a watch event.
   */
  'istio-config': { resources: { kind: string; namespace: string; name: string; resourceVersion: string }[]; services: string[] };
  /**
   * A version of an Istio resource was not applied (malformed, refused by fromIstio, or the config
   * it makes does not parse): the resource's previous good version, if any, stays in force.
   */
  'istio-config-error': { kind: string; namespace: string; name: string; resourceVersion: string; message: string; kept: string | null };
  /**
   * A target — the whole service (`subset` undefined) or one subset — entered or left panic mode:
   * some priority level of it has too few available endpoints while its healthy levels cannot take
   * all the traffic, so that level is balanced over all its endpoints (Envoy's per-priority panic).
   * Each target decides on its own; the event fires only when that target's state changes.
   * `available` and `total` count the target's endpoints.
   */
  panic: { service: string; subset: string | undefined; active: boolean; available: number; total: number };
  /**
   * A request ended (published only while someone listens, so it costs nothing otherwise).
   * `status` is 0 when it failed without a response, else the response's (also when its body
   * then failed, or the caller dropped it); `error` is the error's code (its name when it has no
   * string code: `TimeoutError` for your own AbortSignal.timeout; `aborted` for an abort with no
   * reason, as a dropped body's).
   */
  request: {
    service: string;
    endpoint: string | undefined;
    subset: string | undefined;
    /** The service whose route sent the request (or a mirrored copy) to this one, when another. */
    via: string | undefined;
    method: string;
    status: number;
    error: string | undefined;
    attempts: number;
    durationMs: number;
  };
}

export type MeshEventName = keyof MeshEventMap;

/** Every event name, checked against MeshEventMap by the type checker (none missing, none extra). */
const NAMES = {
  ejection: true,
  unejection: true,
  circuit: true,
  'health-check': true,
  retry: true,
  'retry-budget-exhausted': true,
  hedge: true,
  'hedge-budget-exhausted': true,
  'rate-limited': true,
  overloaded: true,
  'concurrency-limit': true,
  'inbound-refused': true,
  drain: true,
  'discovery-update': true,
  'discovery-error': true,
  'istio-config': true,
  'istio-config-error': true,
  panic: true,
  request: true,
} as const satisfies Record<MeshEventName, true>;

/** The names `mesh.on` takes. */
export const MESH_EVENT_NAMES: readonly MeshEventName[] = Object.freeze(Object.keys(NAMES) as MeshEventName[]);

/** True when `name` is an event meshlet emits. */
export function isMeshEventName(name: unknown): name is MeshEventName {
  return typeof name === 'string' && Object.hasOwn(NAMES, name);
}

/** What `mesh.on` returns. */
export interface Disposable {
  dispose(): void;
}

type Listener<K extends MeshEventName> = (payload: MeshEventMap[K]) => void;

/**
 * One event name's listeners and diagnostics_channel (`meshlet:<name>`), for a caller that checks
 * and emits it often (a service's `request` event, once per request): held, it is two reads.
 */
export class EventTopic<K extends MeshEventName> {
  readonly listeners = new Set<Listener<K>>();
  readonly channel: diagnostics.Channel;
  readonly name: K;
  readonly #onListenerError: ListenerErrorHandler;

  constructor(name: K, onListenerError: ListenerErrorHandler) {
    this.name = name;
    this.channel = diagnostics.channel(`meshlet:${name}`);
    this.#onListenerError = onListenerError;
  }

  /** True when the event has a listener or a diagnostics_channel subscriber. */
  get wanted(): boolean {
    return this.listeners.size > 0 || this.channel.hasSubscribers;
  }

  /**
   * Call every listener. Nothing a listener does reaches the emitter (a request settling, a
   * discovery update): a throw, or a returned promise that rejects, goes to the error handler.
   */
  emit(payload: MeshEventMap[K]): void {
    for (const l of this.listeners) {
      try {
        const r = l(payload) as unknown;
        // An async listener that rejects would be an unhandled rejection: the process would exit.
        // Only a returned value is looked at; `undefined`, the usual one, costs one comparison.
        if (r !== undefined && r !== null && typeof (r as PromiseLike<unknown>).then === 'function') {
          (r as PromiseLike<unknown>).then(undefined, (err: unknown) => this.#failed(err, l));
        }
      } catch (err) {
        this.#failed(err, l);
      }
    }
    if (this.channel.hasSubscribers) this.channel.publish(payload);
  }

  /** A listener failed: told to the handler, which itself may not throw into the emitter either. */
  #failed(err: unknown, listener: Listener<K>): void {
    try {
      this.#onListenerError(err, this.name, listener as Listener<MeshEventName>);
    } catch {
      // The handler logs; a logger that throws is already ignored (core/log.ts). Nothing else may escape.
    }
  }
}

/** What is told of a listener that threw: the error, the event, the listener. */
export type ListenerErrorHandler = (err: unknown, event: MeshEventName, listener: Listener<MeshEventName>) => void;

/** The event hub of one mesh. Emitting with no listener and no channel subscriber costs a check. */
export class MeshEvents {
  readonly #topics = new Map<MeshEventName, EventTopic<any>>();
  readonly #onListenerError: ListenerErrorHandler;

  constructor(onListenerError: ListenerErrorHandler) {
    this.#onListenerError = onListenerError;
  }

  /** The topic of `name` (made on first use, then the same object). */
  topic<K extends MeshEventName>(name: K): EventTopic<K> {
    let t = this.#topics.get(name);
    if (t === undefined) this.#topics.set(name, (t = new EventTopic(name, this.#onListenerError)));
    return t;
  }

  /** Add a listener; the caller (mesh.on) has checked the name and that the listener is a function. */
  on<K extends MeshEventName>(name: K, listener: Listener<K>): Disposable {
    const set = this.topic(name).listeners;
    set.add(listener);
    return { dispose: () => void set.delete(listener) };
  }

  /** True when an event of this name has a listener or a diagnostics_channel subscriber. */
  wants(name: MeshEventName): boolean {
    return this.topic(name).wanted;
  }

  emit<K extends MeshEventName>(name: K, payload: MeshEventMap[K]): void {
    this.topic(name).emit(payload);
  }
}
