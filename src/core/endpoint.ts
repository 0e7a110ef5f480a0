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
import { urlHost, type EndpointSpec } from './endpoint-spec.js';
import { EndpointLoad } from '../load/endpoint-load.js';

/** @internal One connection pool of an endpoint and the Host header it writes by itself. */
export interface HostPool {
  readonly dispatcher: Dispatcher;
  /** The Host the pool writes for a request that sets none; any other is set on the request. */
  readonly host: string;
}

/**
 * @internal Makes the pools of a service's endpoints (service/endpoint-set.ts; one for them all):
 * an endpoint's first, and — when `perHost` — one for each further Host its requests carry (or
 * null: that Host goes on the first pool); for the health checker, a connection of the
 * endpoint's own for its checks (null: none, the checks go over the first pool); and for mirrored
 * copies, a pool of their own (null: none, the copies go over the first pool).
 */
export interface PoolMaker {
  readonly perHost: boolean;
  primary(endpoint: Endpoint): HostPool;
  forHost(endpoint: Endpoint, host: string): HostPool | null;
  forChecks(endpoint: Endpoint, host: string): HostPool | null;
  forMirrors(endpoint: Endpoint, host: string): HostPool | null;
}

/** Most pools an endpoint keeps for Hosts other than its first pool's; further ones share that one. */
export const MAX_HOST_POOLS = 8;

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
   * checks). Pickers skip unavailable endpoints unless their priority level is in panic.
   */
  available = true;

  /** In-flight requests, counters and the latency estimate (load/endpoint-load.ts). */
  readonly load: EndpointLoad;

  #primary: HostPool | null = null;
  /** Pools for further Hosts (TLS: undici verifies a connection for one server name, the Host's). */
  #byHost: Map<string, HostPool> | null = null;
  /** The pool of mirrored copies (made with the first copy), or null. */
  #mirrors: HostPool | null = null;
  readonly #maker: PoolMaker;
  #closing = false;
  /** Frozen pick result so a picker never allocates to return this endpoint. */
  readonly picked: PickedEndpoint;

  /**
   * @param dispatcher the connection pool for this endpoint, or a function that makes it on first
   *   use (an undici Pool is ~18 KiB: a large fleet pays only for the endpoints it talks to); the
   *   mesh passes a {@link PoolMaker}.
   * @param load its load estimates (a fresh one by default).
   */
  constructor(spec: EndpointSpec, dispatcher: Dispatcher | (() => Dispatcher) | PoolMaker, load: EndpointLoad = new EndpointLoad()) {
    this.key = spec.origin;
    this.protocol = spec.protocol;
    this.hostname = spec.hostname;
    this.port = spec.port;
    this.authority = new URL(spec.origin).host;
    this.weight = spec.weight;
    this.labels = spec.labels;
    this.zone = spec.zone;
    this.region = spec.region;
    this.hashKey = hashKeyOf(spec);
    this.priority = spec.priority;
    if (typeof dispatcher !== 'function' && 'primary' in dispatcher) this.#maker = dispatcher;
    else {
      const make = typeof dispatcher === 'function' ? dispatcher : () => dispatcher;
      this.#maker = { perHost: false, primary: (ep) => ({ dispatcher: make(), host: ep.authority }), forHost: () => null, forChecks: () => null, forMirrors: () => null };
    }
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
    return (this.#primary ??= this.#maker.primary(this)).dispatcher;
  }

  /**
   * @internal The pool for a request with Host `host` (made on first use): the first pool, or —
   * when the endpoint keeps one per Host — that Host's (at most {@link MAX_HOST_POOLS}; none is
   * made once the endpoint is closing).
   */
  poolFor(host: string): HostPool {
    const first = (this.#primary ??= this.#maker.primary(this));
    if (host === first.host || !this.#maker.perHost) return first;
    const known = this.#byHost?.get(host);
    if (known !== undefined) return known;
    if (this.#closing || (this.#byHost?.size ?? 0) >= MAX_HOST_POOLS) return first;
    const made = this.#maker.forHost(this, host);
    if (made === null) return first;
    (this.#byHost ??= new Map()).set(host, made);
    return made;
  }

  /**
   * @internal A dispatcher of this endpoint's own for its health checks, made now for `host` (the
   * Host they carry), dialled as its pools are, and closed by the caller (health/health-check.ts):
   * a check that hangs then holds no connection a request waits for. Null for an endpoint made
   * with a dispatcher rather than a service's {@link PoolMaker}: its checks go over that one.
   */
  checkPool(host: string): HostPool | null {
    return this.#maker.forChecks(this, host);
  }

  /**
   * @internal The pool of the copies route mirrors send this endpoint (layers/mirror.ts), made on
   * the first for its Host `host` and then kept, closed with the endpoint's other pools: copies
   * that hang hold none of the connections its requests take, as Envoy sends a shadow over the
   * mirror cluster's own pool. The first pool for an endpoint made with a dispatcher rather than a
   * service's {@link PoolMaker}; null once the endpoint is closing (no copy is sent then).
   */
  mirrorPool(host: string): HostPool | null {
    if (this.#mirrors !== null) return this.#mirrors;
    if (this.#closing) return null;
    return (this.#mirrors = this.#maker.forMirrors(this, host) ?? this.poolFor(host));
  }

  /** Every pool made so far; from now on none is made for a new Host. */
  #retire(): Dispatcher[] {
    this.#closing = true;
    const all = this.#byHost === null ? [] : [...this.#byHost.values()].map((p) => p.dispatcher);
    if (this.#primary !== null) all.unshift(this.#primary.dispatcher);
    const mirrors = this.#mirrors?.dispatcher;
    if (mirrors !== undefined && !all.includes(mirrors)) all.push(mirrors);
    return all;
  }

  /** Close the pools once their requests are done (nothing to do for one never made). */
  close(): Promise<void> {
    return Promise.all(this.#retire().map((d) => d.close())).then(() => {});
  }

  /** Abort the pools' requests and close them. */
  destroy(): Promise<void> {
    return Promise.all(this.#retire().map((d) => d.destroy())).then(() => {});
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
  return `${urlHost(spec.hostname)}:${spec.port}`;
}
