/**
 * The Mesh: owns the services, the dispatcher and their lifecycle. `createMesh(config)` validates
 * the whole config first (every error names its field), then starts discovery for each service.
 */
import type { RequestInfo, RequestInit, Response } from 'undici';
import { meshFetch, type RedirectPolicy } from './security/redirects.js';
import { BalancerRegistry, type BalancerDefinition, type BalancerFactory } from './balancers/balancer.js';
import { registerBuiltinBalancers } from './balancers/builtins.js';
import { parseMeshConfig, type MeshConfig, type ParsedMeshConfig } from './service/config.js';
import { meshToJSON } from './service/config-json.js';
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
import { fromInterceptor, type Layer } from './request/layer.js';

/**
 * Module-level registrations (`registerBalancer`, `registerDiscovery`) live on `globalThis` under
 * a `Symbol.for` key, so the ESM and the CJS copy of meshlet loaded in one process share them;
 * each copy keeps its own built-ins.
 */
const kShared = Symbol.for('meshlet.registrations');
interface Shared {
  readonly balancers: Map<string, BalancerFactory<any> | BalancerDefinition<any>>;
  readonly discoveries: Map<string, DiscoveryFactory<any> | DiscoveryDefinition<any>>;
}
const shared: Shared = ((globalThis as Record<symbol, Shared | undefined>)[kShared] ??= { balancers: new Map(), discoveries: new Map() });

let builtins: { balancers: BalancerRegistry; discoveries: DiscoveryRegistry } | null = null;

/** The built-ins of this copy, plus every module-level registration of either copy. */
function registries(): { balancers: BalancerRegistry; discoveries: DiscoveryRegistry } {
  if (builtins === null) {
    const balancers = new BalancerRegistry();
    registerBuiltinBalancers(balancers);
    const discoveries = new DiscoveryRegistry();
    registerBuiltinDiscovery(discoveries);
    builtins = { balancers, discoveries };
  }
  const balancers = new BalancerRegistry(builtins.balancers);
  for (const [name, def] of shared.balancers) if (!balancers.has(name)) balancers.register(name, def);
  const discoveries = new DiscoveryRegistry(builtins.discoveries);
  for (const [type, def] of shared.discoveries) if (!discoveries.has(type)) discoveries.register(type, def);
  return { balancers, discoveries };
}

/**
 * Register a load-balancing strategy for every mesh created afterwards. The built-ins
 * (`round-robin`, `random`, `least-request`, `peak-ewma`, `prequal`, `ring-hash`, `maglev`) are registered
 * the same way.
 * @throws InvalidConfigError when the name is not kebab-case or is taken.
 */
export function registerBalancer<O>(name: string, factory: BalancerFactory<O> | BalancerDefinition<O>): void {
  registries().balancers.register(name, factory); // validates, and refuses a taken name
  shared.balancers.set(name, factory);
}

/**
 * Register a discovery source type for every mesh created afterwards (`static` is built in).
 * @throws InvalidConfigError when the type is not kebab-case or is taken.
 */
export function registerDiscovery<O>(type: string, factory: DiscoveryFactory<O> | DiscoveryDefinition<O>): void {
  registries().discoveries.register(type, factory);
  shared.discoveries.set(type, factory);
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
  #graceMs = 30_000;
  readonly #parsed: ParsedMeshConfig;

  /** @internal Use {@link createMesh}. */
  constructor(config: MeshConfig) {
    expectObject(config, '');
    const { balancers, discoveries } = registries();
    for (const [name, def] of Object.entries(config?.balancers ?? {})) balancers.register(name, def);
    for (const [type, def] of Object.entries(config?.discoveries ?? {})) discoveries.register(type, def);
    const parsed = parseMeshConfig(config, balancers, discoveries);

    this.#parsed = parsed;
    this.#redirects = parsed.redirects;
    const random = config.random ?? Math.random;
    const now = config.now ?? (() => performance.now());
    const meshLog = sectionLogger('meshlet:mesh', config.logger);
    this.#events = new MeshEvents((err) => meshLog.warn(`an event listener threw: ${(err as Error)?.message ?? String(err)}`));
    const locality = processLocality(parsed.locality);
    const hosts = new Map<string, Service>();
    // Every user factory runs before anything starts: one that fails leaves nothing running.
    const built = parsed.services.map((svc) => {
      const log = sectionLogger(`meshlet:service:${svc.name}`, config.logger);
      const ctx = { service: svc.name, events: this.#events, log, now, random };
      const interceptors: Layer[] = [];
      for (const make of [...parsed.interceptors, ...svc.interceptors]) {
        const i = make(ctx);
        if (i !== null) interceptors.push(fromInterceptor(i));
      }
      return { svc, log, interceptors };
    });
    for (const { svc, log, interceptors } of built) {
      const service = new Service(svc, { random, now, log, events: this.#events, locality, interceptors });
      this.#services.set(svc.name, service);
      hosts.set(svc.name, service);
      for (const h of svc.hosts) hosts.set(h, service);
    }
    this.dispatcher = new MeshDispatcher(
      { hosts, unknownHosts: parsed.unknownHosts },
      {
        close: async () => {
          await Promise.allSettled([...this.#services.values()].map((s) => s.close(this.#graceMs)));
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

  /**
   * The mesh's config with every field's effective value (defaults filled, durations in ms,
   * current field names): `createMesh(JSON.parse(JSON.stringify(mesh)))` builds the same mesh.
   * Functions, a Redis `client` object and secrets (a literal Kubernetes token, an inline PEM
   * private key) are left out; give them again.
   */
  toJSON(): MeshConfig {
    return meshToJSON(this.#parsed) as unknown as MeshConfig;
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
   * Stop discovery and new requests, let in-flight ones finish — their retries included — for up
   * to `graceMs` (default 30 000), then end whatever still runs with MESH_CLOSED and close every
   * connection. Resolves once every request has settled; nothing is sent after that. Idempotent:
   * later calls return the same promise.
   */
  close(options: { graceMs?: number } = {}): Promise<void> {
    if (this.#closing === null) {
      const grace = options.graceMs ?? 30_000;
      if (!(grace >= 0)) throw new InvalidConfigError('close.graceMs', `expected a number ≥ 0, got ${String(grace)}`);
      this.#graceMs = grace;
      this.#closing = this.dispatcher.close();
    }
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
