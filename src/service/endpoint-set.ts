/**
 * A service's endpoints: each discovery snapshot is diffed by address (tower's `Change`,
 * linkerd's `reset_pool`). An endpoint whose address stays keeps its object — its connection
 * pool, load estimates and health — and only its metadata is refreshed; a new one is made with a
 * pool created on first use; a removed one takes no new requests, finishes its in-flight ones,
 * and then its pool closes. Once the service is cut off, no pool is created any more. The set
 * also holds what its endpoints' pools are made of: the pool config, and the TLS material
 * (certificates, reloaded on change) when the service uses TLS.
 */
import { Pool } from 'undici';
import type { EndpointSpec } from '../core/endpoint-spec.js';
import { overTls } from '../core/endpoint-spec.js';
import { Endpoint } from '../core/endpoint.js';
import { MeshClosedError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { DEFAULT_DECAY_MS, EndpointLoad, type ServiceLoad } from '../load/endpoint-load.js';
import { TlsMaterial } from '../security/tls.js';
import type { ParsedPool, ParsedService } from './config.js';
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
  readonly #pool: ParsedPool;
  readonly #tls: TlsMaterial | null;
  readonly #decayMs: number;
  readonly #log: Logger;
  readonly #cut: () => boolean;

  /** @param cut true once the service was cut off at the end of close's grace */
  constructor(config: ParsedService, deps: { log: Logger; cut: () => boolean }) {
    this.#pool = config.pool;
    this.#tls = config.tls
      ? new TlsMaterial(config.tls, {
          log: deps.log,
          connectTimeoutMs: config.pool.connectTimeoutMs,
          defaultServername: config.hosts[0] ?? config.name,
          meshHost: meshHost(config),
        })
      : null;
    const decay = (config.balancer.options as { decayMs?: unknown } | null)?.decayMs;
    this.#decayMs = typeof decay === 'number' ? decay : DEFAULT_DECAY_MS;
    this.#log = deps.log;
    this.#cut = deps.cut;
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
    const p = this.#pool;
    const makePool = (): Pool => {
      if (this.#cut()) throw new MeshClosedError();
      return new Pool(spec.origin, {
        connections: p.connections,
        pipelining: p.pipelining,
        keepAliveTimeout: p.keepAliveTimeoutMs,
        headersTimeout: p.headersTimeoutMs,
        bodyTimeout: p.bodyTimeoutMs,
        maxHeaderSize: p.maxHeaderSizeBytes,
        maxResponseSize: p.maxResponseSizeBytes,
        ...(this.#tls !== null ? { connect: this.#tls.connect } : { connectTimeout: p.connectTimeoutMs }),
      });
    };
    return new Endpoint(spec, makePool, new EndpointLoad(this.#decayMs, this.load));
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
