/**
 * An Endpoint is one replica of a service: its address, its discovery metadata (weight, labels,
 * locality) and its connection pool. Its live numbers (in-flight, counters, peak-EWMA latency) are
 * an {@link EndpointLoad} in `load`, kept apart (load/endpoint-load.ts).
 *
 * Endpoints outlive picker rebuilds: when discovery pushes a new set, an endpoint whose address is
 * unchanged keeps this object — its connection pool, its EWMA and its health — and only its
 * metadata is refreshed (linkerd's `reset_pool` diff). Balancers read the live numbers from
 * `endpoint.load`; they never keep their own copies.
 */
import type { Dispatcher } from 'undici';
import type { EndpointSpec } from './endpoint-spec.js';
import { EndpointLoad } from '../load/endpoint-load.js';

/** Lifecycle of an endpoint inside a service. */
export type EndpointState = 'active' | 'draining' | 'closed';

/** The tagged result a picker returns for this endpoint; one frozen object per endpoint. */
export interface PickedEndpoint {
  readonly type: 'pick';
  readonly endpoint: Endpoint;
}

export class Endpoint {
  /** Stable identity: the origin, e.g. `http://10.0.0.7:8080`. */
  readonly key: string;
  /** `http:` or `https:`. */
  readonly protocol: string;
  readonly hostname: string;
  readonly port: number;
  /** The address as a Host header writes it: `10.0.0.7:8080`, `[::1]:8080` (no port when it is the protocol's default). */
  readonly authority: string;
  /**
   * @internal The Host header the pool writes by itself for a request that sets none: the
   * endpoint's `authority`, unless the pool was made to write the service's name
   * (service/endpoint-set.ts). A request that must carry another Host sets it.
   */
  poolHost: string;

  /** Relative weight (≥ 1); refreshed on discovery updates. */
  weight: number;
  /** Labels (e.g. `version: v2`); refreshed on discovery updates. */
  labels: Readonly<Record<string, string>>;
  zone: string | undefined;
  region: string | undefined;
  /**
   * Key this endpoint is placed under by hash balancers: its spec's `hashKey`, else its address as
   * Envoy writes it, `hostname:port` (`10.0.0.7:8080`, `[::1]:8080`) — Envoy's `hash_key`
   * metadata, else its address, so rings and tables match a sidecar's.
   */
  hashKey: string;
  /** Priority group (0 = highest); refreshed on discovery updates. */
  priority: number;

  state: EndpointState = 'active';
  /**
   * False while the endpoint must not take new requests (ejected, open circuit, failing health
   * checks). Pickers skip unavailable endpoints unless the service is in panic mode.
   */
  available = true;

  /** In-flight requests, counters and the latency estimate (load/endpoint-load.ts). */
  readonly load: EndpointLoad;

  #dispatcher: Dispatcher | null;
  readonly #makeDispatcher: (() => Dispatcher) | null;
  /** Frozen pick result so a picker never allocates to return this endpoint. */
  readonly picked: PickedEndpoint;

  /**
   * @param dispatcher the connection pool for this endpoint, or a function that makes it on first
   *   use (an undici Pool is ~18 KiB: a large fleet pays only for the endpoints it talks to).
   * @param load its load estimates (a fresh one by default).
   */
  constructor(spec: EndpointSpec, dispatcher: Dispatcher | (() => Dispatcher), load: EndpointLoad = new EndpointLoad()) {
    this.key = spec.origin;
    this.protocol = spec.protocol;
    this.hostname = spec.hostname;
    this.port = spec.port;
    this.authority = new URL(spec.origin).host;
    this.poolHost = this.authority;
    this.weight = spec.weight;
    this.labels = spec.labels;
    this.zone = spec.zone;
    this.region = spec.region;
    this.hashKey = hashKeyOf(spec);
    this.priority = spec.priority;
    this.#dispatcher = typeof dispatcher === 'function' ? null : dispatcher;
    this.#makeDispatcher = typeof dispatcher === 'function' ? dispatcher : null;
    this.load = load;
    this.picked = Object.freeze({ type: 'pick' as const, endpoint: this });
  }

  /** Refresh discovery metadata; returns true when anything a picker uses changed. */
  update(spec: EndpointSpec): boolean {
    const hashKey = hashKeyOf(spec);
    const changed =
      this.weight !== spec.weight ||
      this.zone !== spec.zone ||
      this.region !== spec.region ||
      this.hashKey !== hashKey ||
      this.priority !== spec.priority ||
      !sameLabels(this.labels, spec.labels);
    this.weight = spec.weight;
    this.labels = spec.labels;
    this.zone = spec.zone;
    this.region = spec.region;
    this.hashKey = hashKey;
    this.priority = spec.priority;
    return changed;
  }

  /** The connection pool that carries this endpoint's requests (made on first use). */
  get dispatcher(): Dispatcher {
    return (this.#dispatcher ??= this.#makeDispatcher!());
  }

  /** Close the pool once its requests are done (nothing to do if it was never made). */
  close(): Promise<void> {
    return this.#dispatcher === null ? Promise.resolve() : this.#dispatcher.close();
  }

  /** Abort the pool's requests and close it. */
  destroy(): Promise<void> {
    return this.#dispatcher === null ? Promise.resolve() : this.#dispatcher.destroy();
  }

  /** Requests in flight now (shorthand for `load.inFlight`, for custom balancers). */
  get inFlight(): number {
    return this.load.inFlight;
  }

  toString(): string {
    return this.key;
  }
}

function sameLabels(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (a[k] !== b[k]) return false;
  return true;
}

/** The spec's `hashKey`, else its address as Envoy's `Address::asString()` writes it. */
function hashKeyOf(spec: EndpointSpec): string {
  if (spec.hashKey !== undefined) return spec.hashKey;
  const host = spec.hostname.includes(':') && !spec.hostname.startsWith('[') ? `[${spec.hostname}]` : spec.hostname;
  return `${host}:${spec.port}`;
}
