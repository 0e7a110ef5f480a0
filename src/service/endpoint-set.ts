/**
 * A service's endpoints: each discovery snapshot is diffed by address (tower's `Change`,
 * linkerd's `reset_pool`). An endpoint whose address stays keeps its object — its connection
 * pool, load estimates and health — and only its metadata is refreshed; a new one is made with a
 * pool created on first use; a removed one takes no new requests, finishes its in-flight ones,
 * and then its pool closes. Once the service is cut off, no pool is created any more. The set
 * also holds what its endpoints' pools are made of: the pool config, and the TLS material
 * (certificates, reloaded on change) when the service uses TLS.
 *
 * An endpoint's first pool is made for the origin `http(s)://<service name>` and dials the
 * endpoint's address through its own connector (undici's `buildConnector`, as `Pool` builds by
 * default, or the TLS material's): undici then writes `host: <service name>` from a line it
 * computed once per pool, where a Host header set per request costs it header parsing and a host
 * line built per request (3–7 % of a request's CPU, measured with `bench/hot-path.mjs`). That is
 * the Host meshlet sends by default (`hostHeader: 'service'`, a caller's `http://<name>`); a
 * request that must carry another one sets it (core/headers.ts `hostHeadersOn`). undici's
 * diagnostics channels report such a pool's connections and requests under the service's name
 * (its Client sets each request's origin); meshlet's events and errors name the endpoint.
 *
 * With the service's `tls`, undici takes each request's Host for the connection's server name and
 * reconnects when it changes, though meshlet's connector verifies the server for the configured
 * name whatever the Host: so such an endpoint keeps one pool per Host (at most MAX_HOST_POOLS;
 * further ones share the first), each made for that Host. An https endpoint without the service's
 * `tls` keeps undici's behaviour (its origin, the Host as the server name).
 *
 * With health checks, an endpoint's checks go over a dispatcher of their own (one connection, made
 * as its first pool is; the checker closes it): a check that hangs holds none of the connections
 * its requests take. Likewise the copies route mirrors send an endpoint go over a pool of their
 * own (made with the first copy, as its first pool is, with the same options; closed with the
 * endpoint's pools): a mirror target that hangs holds none of the connections callers wait for.
 */
import { buildConnector, Client, Pool, type Dispatcher } from 'undici';
import type { EndpointSpec } from '../core/endpoint-spec.js';
import { overTls } from '../core/endpoint-spec.js';
import { Endpoint, type HostPool, type PoolMaker } from '../core/endpoint.js';
import { MeshClosedError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { decayMsOf } from '../balancers/config.js';
import { EndpointLoad, type ServiceLoad } from '../load/endpoint-load.js';
import { TlsMaterial } from '../security/tls.js';
import type { ParsedService } from './config.js';
import { meshHost } from './hosts.js';

/** What an update changed. */
export interface EndpointChange {
  readonly added: readonly Endpoint[];
  readonly removed: readonly Endpoint[];
  /** True when anything a picker reads changed (membership or metadata). */
  readonly changed: boolean;
}

export class EndpointSet {
  readonly #active = new Map<string, Endpoint>();
  readonly #draining = new Set<Endpoint>();
  /** Shared by the endpoints' loads; the service sets `recentLatency` from its balancers. */
  readonly load: ServiceLoad = { inFlight: 0, recentLatency: true };
  readonly #connectTimeoutMs: number;
  readonly #tls: TlsMaterial | null;
  readonly #decayMs: number;
  readonly #log: Logger;
  readonly #cut: () => boolean;
  readonly #hostHeader: () => 'service' | 'endpoint';
  /** The Host callers address the service by, for its endpoints' first pools (null: a URL does not take it). */
  readonly #namedHost: string | null;
  /** Dials plaintext endpoints: one for the set, as a Pool builds one for itself. */
  #dial: ReturnType<typeof buildConnector> | null = null;
  /** What every pool of the set is made with, besides how it connects. */
  readonly #poolOptions: Pool.Options;
  /** Makes every endpoint's pools: one object for the set, so an endpoint costs no closures for it. */
  readonly #maker: PoolMaker;

  /**
   * @param cut true once the service was cut off at the end of close's grace
   * @param hostHeader the service's current `hostHeader` (read when a pool is made)
   */
  constructor(config: ParsedService, deps: { log: Logger; cut: () => boolean; hostHeader: () => 'service' | 'endpoint' }) {
    this.#connectTimeoutMs = config.pool.connectTimeoutMs;
    this.#tls = config.tls
      ? new TlsMaterial(config.tls, {
          log: deps.log,
          connectTimeoutMs: config.pool.connectTimeoutMs,
          defaultServername: config.hosts[0] ?? config.name,
          meshHost: meshHost(config),
        })
      : null;
    this.#decayMs = decayMsOf(config.balancer);
    this.#log = deps.log;
    this.#cut = deps.cut;
    this.#hostHeader = deps.hostHeader;
    // As the dispatcher writes a caller's host (a URL's `host`): `orders`, or `orders:9080` when only that port reaches the service.
    this.#namedHost = urlHost('http:', config.port === null ? config.name : `${config.name}:${config.port}`);
    const p = config.pool;
    this.#poolOptions = {
      connections: p.connections,
      pipelining: p.pipelining,
      keepAliveTimeout: p.keepAliveTimeoutMs,
      headersTimeout: p.headersTimeoutMs,
      bodyTimeout: p.bodyTimeoutMs,
      maxHeaderSize: p.maxHeaderSizeBytes,
      maxResponseSize: p.maxResponseSizeBytes,
    };
    this.#maker = {
      // With the service's TLS, the server name is the config's whatever the Host: one pool per Host
      // keeps undici from reconnecting whenever the Host (its idea of the server name) changes.
      perHost: this.#tls !== null,
      primary: (ep) => this.#primary(ep),
      forHost: (ep, host) => {
        if (this.#cut()) throw new MeshClosedError();
        return this.#named(ep, host);
      },
      forChecks: (ep, host) => {
        if (this.#cut()) throw new MeshClosedError();
        return this.#forChecks(ep, host);
      },
      forMirrors: (ep, host) => {
        if (this.#cut()) throw new MeshClosedError();
        return this.#forMirrors(ep, host);
      },
    };
  }

  /** Stop watching the TLS material's files (close: nothing new will connect). */
  closeTls(): void {
    this.#tls?.close();
  }

  get size(): number {
    return this.#active.size;
  }

  /** Endpoints that take traffic. */
  active(): Endpoint[] {
    return [...this.#active.values()];
  }

  /** Active and draining endpoints (stats, close). */
  all(): Endpoint[] {
    return [...this.#active.values(), ...this.#draining];
  }

  /** Apply a full snapshot. */
  apply(specs: readonly EndpointSpec[]): EndpointChange {
    const next = new Map<string, EndpointSpec>();
    for (const raw of specs) {
      const spec = this.#tls !== null ? overTls(raw) : raw;
      if (next.has(spec.origin)) this.#log.debug(`duplicate endpoint ${spec.origin} ignored`);
      else next.set(spec.origin, spec);
    }
    this.#tls?.endpoints(next.values());
    const added: Endpoint[] = [];
    const removed: Endpoint[] = [];
    let changed = false;
    for (const [key, ep] of this.#active) {
      if (!next.has(key)) {
        this.#active.delete(key);
        this.#drain(ep);
        removed.push(ep);
      }
    }
    for (const [key, spec] of next) {
      const ep = this.#active.get(key);
      if (ep) {
        if (ep.update(spec)) changed = true;
      } else {
        const created = this.#create(spec);
        this.#active.set(key, created);
        added.push(created);
      }
    }
    return { added, removed, changed: changed || added.length > 0 || removed.length > 0 };
  }

  #create(spec: EndpointSpec): Endpoint {
    return new Endpoint(spec, this.#maker, new EndpointLoad(this.#decayMs, this.load));
  }

  /** An endpoint's first pool: made for the service's Host when it can be, else for the endpoint. */
  #primary(ep: Endpoint): HostPool {
    if (this.#cut()) throw new MeshClosedError();
    const tls = this.#tls;
    const service = this.#hostHeader() === 'service' ? this.#namedHost : null;
    const pool = service !== null && (ep.protocol === 'http:' || tls !== null) ? this.#named(ep, service) : null;
    return pool ?? this.#own(ep);
  }

  /**
   * The dispatcher of an endpoint's health checks: an undici Client (one connection, ~ a Pool's
   * one client) made as its first pool is — for the checks' Host when a URL takes it, else for
   * the endpoint — with the same options and TLS, so that a check that hangs holds none of the
   * connections its requests take. Made only for a service with health checks, on its first check.
   */
  #forChecks(ep: Endpoint, host: string): HostPool {
    const named = ep.protocol === 'http:' || this.#tls !== null ? this.#named(ep, host, CLIENT) : null;
    return named ?? this.#own(ep, CLIENT);
  }

  /**
   * The pool of the copies route mirrors send an endpoint: made as its first pool is — for the
   * copies' Host (`<host>-shadow`) when a URL takes it, else for the endpoint — with the same
   * options and TLS, so that copies never wait for, nor hold, the connections callers take.
   */
  #forMirrors(ep: Endpoint, host: string): HostPool {
    const named = ep.protocol === 'http:' || this.#tls !== null ? this.#named(ep, host) : null;
    return named ?? this.#own(ep);
  }

  /** A pool made for the endpoint's own origin (undici's behaviour: its Host, its server name; the service's TLS, if any). */
  #own(ep: Endpoint, make: MakeDispatcher = POOL): HostPool {
    const connect = this.#tls !== null ? { connect: this.#tls.connect } : { connectTimeout: this.#connectTimeoutMs };
    return { dispatcher: make(ep.key, { ...this.#poolOptions, ...connect }), host: ep.authority };
  }

  /**
   * A pool made for `protocol//host` that dials the endpoint's address (with the service's TLS,
   * if any); none when such a URL would not write `host` as it is (`https://orders:443` drops the port).
   */
  #named(ep: Endpoint, host: string, make: MakeDispatcher = POOL): HostPool | null {
    if (urlHost(ep.protocol, host) !== host) return null;
    return { dispatcher: make(`${ep.protocol}//${host}`, { ...this.#poolOptions, connect: this.#dialer(ep) }), host };
  }

  /**
   * A connector for a pool whose origin names a Host, not this endpoint: it dials the endpoint's
   * address — through the TLS material's connector (which picks the server name from the config
   * and the endpoint's host name, never the Host), or a plain one like a Pool's own.
   */
  #dialer(ep: Endpoint): buildConnector.connector {
    const dial = this.#tls?.connect ?? (this.#dial ??= buildConnector({ timeout: this.#connectTimeoutMs }));
    const h = ep.hostname;
    const hostname = h.charCodeAt(0) === 0x5b /* [ */ ? h.slice(1, -1) : h;
    const port = String(ep.port);
    const host = ep.authority;
    return (opts, callback) => dial({ ...opts, host, hostname, port }, callback);
  }

  #drain(ep: Endpoint): void {
    ep.state = 'draining';
    this.#draining.add(ep);
    ep.close().then(
      () => {
        ep.state = 'closed';
        this.#draining.delete(ep);
      },
      (err: Error) => this.#log.warn(`closing ${ep.key} failed: ${err.message}`),
    );
  }

  /** Close every pool once its requests are done. */
  async close(): Promise<void> {
    await Promise.allSettled(
      this.all().map((ep) => {
        ep.state = 'closed';
        return ep.close().catch(() => {});
      }),
    );
  }

  /** Abort every pool's requests and close it. */
  async destroy(): Promise<void> {
    await Promise.allSettled(this.all().map((ep) => ep.destroy()));
  }
}

type MakeDispatcher = (origin: string, options: Pool.Options) => Dispatcher;
/** An endpoint's pools. */
const POOL: MakeDispatcher = (origin, options) => new Pool(origin, options);
/** Its health checks' one connection (a Client takes a Pool's options and leaves `connections`). */
const CLIENT: MakeDispatcher = (origin, { connections: _, ...options }) => new Client(origin, options);

/** `name` as the host of a URL of `protocol` writes it, or null when such a URL does not take it. */
function urlHost(protocol: string, name: string): string | null {
  try {
    return new URL(`${protocol}//${name}`).host;
  } catch {
    return null;
  }
}
