/**
 * The Mesh: owns the services, the dispatcher and their lifecycle. `createMesh(config)` validates
 * the whole config first (every error names its field), then starts discovery for each service.
 */
import type { RequestInfo, RequestInit, Response } from 'undici';
import { meshFetch, type RedirectPolicy } from './security/redirects.js';
import { BalancerRegistry, type BalancerDefinition, type BalancerFactory } from './balancers/balancer.js';
import { registerBuiltinBalancers } from './balancers/builtins.js';
import { parseMeshConfig, type MeshConfig } from './service/config.js';
import { MeshDispatcher } from './core/dispatcher.js';
import type { EndpointInput } from './core/endpoint-spec.js';
import { InvalidConfigError } from './core/errors.js';
import { Service, type ServiceStats } from './service/service.js';
import { DiscoveryRegistry, type DiscoveryDefinition, type DiscoveryFactory } from './discovery/discovery.js';
import { registerBuiltinDiscovery } from './discovery/builtins.js';
import { StaticSource } from './discovery/static.js';
import { sectionLogger } from './core/log.js';
import { expectObject } from './config/check.js';
import { processLocality } from './routing/locality.js';
import { MeshEvents, type Disposable, type MeshEventMap, type MeshEventName } from './core/events.js';

let globalBalancers: BalancerRegistry | null = null;
let globalDiscovery: DiscoveryRegistry | null = null;

function balancerRegistry(): BalancerRegistry {
  if (globalBalancers === null) {
    globalBalancers = new BalancerRegistry();
    registerBuiltinBalancers(globalBalancers);
  }
  return globalBalancers;
}

function discoveryRegistry(): DiscoveryRegistry {
  if (globalDiscovery === null) {
    globalDiscovery = new DiscoveryRegistry();
    registerBuiltinDiscovery(globalDiscovery);
  }
  return globalDiscovery;
}

/**
 * Register a load-balancing strategy for every mesh created afterwards. The built-ins
 * (`round-robin`, `random`, `least-request`, `peak-ewma`, `ring-hash`, `maglev`) are registered
 * the same way.
 * @throws InvalidConfigError when the name is not kebab-case or is taken.
 */
export function registerBalancer<O>(name: string, factory: BalancerFactory<O> | BalancerDefinition<O>): void {
  balancerRegistry().register(name, factory);
}

/**
 * Register a discovery source type for every mesh created afterwards (`static` is built in).
 * @throws InvalidConfigError when the type is not kebab-case or is taken.
 */
export function registerDiscovery<O>(type: string, factory: DiscoveryFactory<O> | DiscoveryDefinition<O>): void {
  discoveryRegistry().register(type, factory);
}

/** What `mesh.stats()` returns. */
export interface MeshStats {
  services: Record<string, ServiceStats>;
}

export class Mesh {
  /** The undici Dispatcher every request goes through. */
  readonly dispatcher: MeshDispatcher;
  readonly #services = new Map<string, Service>();
  readonly #events: MeshEvents;
  readonly #redirects: RedirectPolicy;
  #closing: Promise<void> | null = null;

  /** @internal Use {@link createMesh}. */
  constructor(config: MeshConfig) {
    expectObject(config, '');
    const balancers = new BalancerRegistry(balancerRegistry());
    for (const [name, def] of Object.entries(config?.balancers ?? {})) balancers.register(name, def);
    const discoveries = new DiscoveryRegistry(discoveryRegistry());
    for (const [type, def] of Object.entries(config?.discoveries ?? {})) discoveries.register(type, def);
    const parsed = parseMeshConfig(config, balancers, discoveries);

    this.#redirects = parsed.redirects;
    const random = config.random ?? Math.random;
    const now = config.now ?? (() => performance.now());
    const meshLog = sectionLogger('meshlet:mesh', config.logger);
    this.#events = new MeshEvents((err) => meshLog.warn(`an event listener threw: ${(err as Error)?.message ?? String(err)}`));
    const locality = processLocality(parsed.locality);
    const hosts = new Map<string, Service>();
    for (const svc of parsed.services) {
      const service = new Service(svc, {
        random,
        now,
        log: sectionLogger(`meshlet:service:${svc.name}`, config.logger),
        events: this.#events,
        locality,
      });
      this.#services.set(svc.name, service);
      hosts.set(svc.name, service);
      for (const h of svc.hosts) hosts.set(h, service);
    }
    this.dispatcher = new MeshDispatcher(
      { hosts, unknownHosts: parsed.unknownHosts },
      {
        close: async () => {
          await Promise.allSettled([...this.#services.values()].map((s) => s.close()));
        },
        destroy: async () => {
          await Promise.allSettled([...this.#services.values()].map((s) => s.destroy()));
        },
      },
    );
    for (const service of this.#services.values()) service.start();
  }

  /**
   * WHATWG `fetch` through the mesh (undici's implementation): `http://<service>/<path>` reaches a
   * configured service. A convenience over {@link dispatcher}; `undici.request` is faster.
   * Redirects are followed within the called origin only, unless the mesh says `redirects: 'any'`
   * (then credentials are dropped on a cross-origin hop); see security/redirects.ts.
   */
  fetch(input: RequestInfo, init?: RequestInit): Promise<Response> {
    return meshFetch(this.dispatcher, this.#redirects, input, init);
  }

  /**
   * Replace the endpoints of a service that uses static discovery. Added endpoints take traffic at
   * once; removed ones get no new requests, finish their in-flight ones, then close.
   * @throws InvalidConfigError for an unknown or non-static service, or a malformed endpoint.
   */
  setEndpoints(service: string, endpoints: readonly EndpointInput[]): void {
    const svc = this.#services.get(service);
    if (!svc) throw new InvalidConfigError(`setEndpoints(${JSON.stringify(service)})`, 'no such service');
    const source = svc.source;
    if (!(source instanceof StaticSource)) {
      throw new InvalidConfigError(`setEndpoints(${JSON.stringify(service)})`, `service uses "${svc.config.discoveryType}" discovery, not "static"`);
    }
    source.set(endpoints);
  }

  /**
   * Subscribe to an event (`ejection`, `retry`, `circuit`, `discovery-update`, …); returns
   * `{ dispose() }`. Every event is also published on `node:diagnostics_channel` as `meshlet:<name>`.
   */
  on<K extends MeshEventName>(name: K, listener: (payload: MeshEventMap[K]) => void): Disposable {
    return this.#events.on(name, listener);
  }

  /** A snapshot of every service and endpoint: traffic, failures, in-flight, latency, state. */
  stats(): MeshStats {
    const services: Record<string, ServiceStats> = {};
    for (const [name, svc] of this.#services) services[name] = svc.stats();
    return { services };
  }

  /** @internal The service named `name`, for tests and the live view. */
  service(name: string): Service | undefined {
    return this.#services.get(name);
  }

  /**
   * Stop discovery, let in-flight requests finish, close every connection. Requests still running
   * after `graceMs` (default 30 000) are aborted. Idempotent: later calls return the same promise.
   */
  close(options: { graceMs?: number } = {}): Promise<void> {
    this.#closing ??= (async () => {
      const graceMs = options.graceMs ?? 30_000;
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<'expired'>((resolve) => {
        timer = setTimeout(() => resolve('expired'), graceMs);
        timer.unref?.();
      });
      const outcome = await Promise.race([this.dispatcher.close().then(() => 'closed' as const), expired]);
      clearTimeout(timer);
      if (outcome === 'expired') await this.dispatcher.destroy();
    })();
    return this.#closing;
  }
}

/**
 * Create a mesh from a configuration.
 * @throws InvalidConfigError naming the offending field when the config is wrong.
 */
export function createMesh(config: MeshConfig): Mesh {
  return new Mesh(config);
}
