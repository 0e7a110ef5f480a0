/**
 * The Mesh: owns the services, the dispatcher and their lifecycle. `createMesh(config)` validates
 * the whole config first (every error names its field), then starts discovery for each service;
 * when one fails to start, every service built so far is stopped before the error is thrown.
 */
import { performance } from 'node:perf_hooks';
import type { RequestInfo, RequestInit, Response } from 'undici';
import { meshFetch, type RedirectPolicy } from './security/redirects.js';
import { parseMeshConfig, type IstioMeshConfig, type MeshConfig, type ParsedMeshConfig, type ParsedService, type ServiceConfig } from './service/config.js';
import type { LiveServices } from './service/live-services.js';
import type { IstioLive, IstioLiveStats } from './istio/live.js';
import { startIstioLive } from './istio/live-mesh.js';
import { istioLiveToJSON, parseIstioLive, type ParsedIstioLive } from './istio/live-config.js';
import { meshToJSON } from './service/config-json.js';
import { registerOwn, registries } from './service/registrations.js';
import { passthroughRule } from './service/hosts.js';
import { importedRoutes } from './service/route-services.js';
import { MeshDispatcher } from './core/dispatcher.js';
import type { EndpointInput } from './core/endpoint-spec.js';
import { InvalidConfigError, messageOf } from './core/errors.js';
import { guardClock, guardRandom } from './core/clock.js';
import { Service, type ServiceStats } from './service/service.js';
import { StaticSource } from './discovery/static.js';
import { sectionLogger } from './core/log.js';
import { didYouMean, expectObject, rejectUnknown } from './config/check.js';
import { optDurationMs, type Duration } from './config/duration.js';
import { describe } from './core/endpoint-spec.js';
import { processLocality } from './routing/locality.js';
import { isMeshEventName, MESH_EVENT_NAMES, MeshEvents, type Disposable, type MeshEventMap, type MeshEventName } from './core/events.js';
import { fromInterceptor, type Layer } from './request/layer.js';
import { MeshAgent } from './agent/agent.js';
import { installGlobalAgent } from './agent/global.js';
import type { AgentOptions, IncomingMessage, ServerResponse } from 'node:http';
import { Inbound, type InboundStats, type InboundOptions, type DrainOptions, type SignalOptions } from './inbound/inbound.js';
import type { FastifyPlugin, Middleware, ProbeHandler, ProbeOptions, RequestListener } from './inbound/inbound.js';

/** What `mesh.stats()` returns. */
export interface MeshStats {
  services: Record<string, ServiceStats>;
  /** The service's own server, once an inbound entry point or the probes exist. */
  inbound?: InboundStats;
  /** Live Istio config (`istio`): the resources and versions in force. */
  istio?: IstioLiveStats;
}

export class Mesh {
  /** The undici Dispatcher every request goes through. */
  readonly dispatcher: MeshDispatcher;
  readonly #services = new Map<string, Service>();
  readonly #events: MeshEvents;
  readonly #redirects: RedirectPolicy;
  #closing: Promise<void> | null = null;
  /** Run once close() has settled (observability/metrics.ts ends its registration); null once run. */
  #onClosed: Set<() => void> | null = new Set();
  #graceMs = 30_000;
  readonly #parsed: ParsedMeshConfig;
  /** Every service name and alias (the mistyped-name hint suggests one of them). */
  readonly #hostNames: readonly string[];
  #inbound: Inbound | null = null;
  readonly #inboundDeps: ConstructorParameters<typeof Inbound>[0];
  readonly #istioConfig: ParsedIstioLive | null;
  #istio: IstioLive | null = null;
  #live: LiveServices | null = null;

  /** @internal Use {@link createMesh}. */
  constructor(config: MeshConfig | IstioMeshConfig) {
    const raw = expectObject(config, '');
    const { balancers, discoveries } = registries();
    registerOwn(balancers, raw.balancers, 'balancers');
    registerOwn(discoveries, raw.discoveries, 'discoveries');
    const parsed = parseMeshConfig(config, balancers, discoveries);
    this.#istioConfig = raw.istio === undefined ? null : parseIstioLive(raw.istio);

    this.#parsed = parsed;
    this.#redirects = parsed.redirects;
    const meshLog = sectionLogger('meshlet:mesh', config.logger);
    const random = config.random ? guardRandom(config.random, meshLog.warn) : Math.random;
    // perf_hooks' binding: the global `performance` is a getter, read on every call.
    const now = config.now ? guardClock(config.now, meshLog.warn) : () => performance.now();
    // A listener that throws is warned of once (it may run on every request), later at debug.
    const threw = new WeakSet<object>();
    this.#events = new MeshEvents((err, event, listener) => {
      const line = `a listener of '${event}' threw (warned once per listener): ${messageOf(err)}`;
      if (threw.has(listener)) return meshLog.debug(line);
      threw.add(listener);
      meshLog.warn(line);
    });
    this.#inboundDeps = { now, random, log: sectionLogger('meshlet:inbound', config.logger), events: this.#events };
    const locality = processLocality(parsed.locality);
    const hosts = new Map<string, Service>();
    const imported = importedRoutes(parsed.services);
    const peer = (name: string): Service | undefined => this.#services.get(name);
    // Every user factory runs before anything starts: one that fails leaves nothing running.
    const prepare = (svc: ParsedService) => {
      const log = sectionLogger(`meshlet:service:${svc.name}`, config.logger);
      const ctx = { service: svc.name, events: this.#events, log, now, random };
      const interceptors: Layer[] = [];
      for (const make of [...parsed.interceptors, ...svc.interceptors]) {
        const i = make(ctx);
        if (i !== null) interceptors.push(fromInterceptor(i));
      }
      return { svc, log, interceptors };
    };
    const built = parsed.services.map(prepare);
    const make = ({ svc, log, interceptors }: (typeof built)[number]): Service =>
      new Service(svc, { random, now, log, events: this.#events, locality, interceptors, imported: imported.get(svc.name) ?? [], peer });
    try {
      for (const b of built) {
        const service = make(b);
        this.#services.set(b.svc.name, service);
        for (const h of b.svc.addresses) hosts.set(h, service);
      }
      this.dispatcher = new MeshDispatcher(
        { hosts, passthrough: passthroughRule(parsed.unknownHosts), passthroughDispatcher: parsed.passthroughDispatcher, pending: (h) => this.#istio?.pending(h) ?? null },
        {
          close: async () => {
            await this.#istio?.stop();
            await Promise.allSettled([...[...this.#services.values()].map((s) => s.close(this.#graceMs)), this.#live?.closeRetired()]);
          },
          destroy: async () => {
            await this.#istio?.stop();
            await Promise.allSettled([...[...this.#services.values()].map((s) => s.destroy()), this.#live?.closeRetired(true)]);
          },
        },
      );
      // A discovery factory that throws (a registered one) must not leave the sources started before it running.
      for (const service of this.#services.values()) service.start();
      if (this.#istioConfig !== null) {
        ({ istio: this.#istio, live: this.#live } = startIstioLive({
          config: this.#istioConfig,
          parsed,
          rawServices: (raw.services ?? {}) as Record<string, ServiceConfig>,
          registries: { balancers, discoveries },
          services: this.#services,
          hosts,
          routesChanged: () => this.dispatcher.routesChanged(),
          make: (svc) => make(prepare(svc)),
          graceMs: () => this.#graceMs,
          events: this.#events,
          log: meshLog,
          now,
          random,
        }));
      }
    } catch (err) {
      for (const service of this.#services.values()) void service.destroy();
      throw err;
    }
    this.#hostNames = [...hosts.keys()];
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
   * An `http.Agent` that sends `node:http` requests to services through the mesh — `http.request`,
   * `http.get`, axios (`httpAgent`), got (`agent: { http }`) — balanced, retried and limited per
   * request as with `fetch`, in process (no network hop). Other hosts behave as with a plain
   * `http.Agent` (or are refused with UNKNOWN_SERVICE under `unknownHosts: 'reject'`). Options are
   * `http.Agent`'s (`keepAlive` defaults to true). Create one and reuse it. See src/agent/agent.ts.
   */
  agent(options?: AgentOptions): MeshAgent {
    return new MeshAgent({ dispatcher: this.dispatcher, passthrough: this.#parsed.unknownHosts === 'passthrough', names: this.#hostNames }, options);
  }

  /**
   * Make a mesh agent (`agent(options)`) the process's `http.globalAgent`, so every `node:http`
   * call without an agent of its own reaches services through the mesh; returns a function that
   * restores the previous global agent. `https` and libraries with their own agents are not
   * affected (README, "Other HTTP clients").
   */
  installGlobalAgent(options?: AgentOptions): () => void {
    return installGlobalAgent(this.agent(options));
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
   * A listener that throws, or returns a promise that rejects, is warned of (once per listener).
   * @throws InvalidConfigError at `on.name` for a name that is no event, at `on.listener` for a listener that is no function
   */
  on<K extends MeshEventName>(name: K, listener: (payload: MeshEventMap[K]) => void): Disposable {
    if (!isMeshEventName(name)) {
      const hint = typeof name === 'string' ? didYouMean(name, MESH_EVENT_NAMES) : '';
      throw new InvalidConfigError('on.name', `expected an event name, got ${describe(name)}${hint} (events: ${MESH_EVENT_NAMES.join(', ')})`);
    }
    if (typeof listener !== 'function') throw new InvalidConfigError('on.listener', `expected a function, got ${describe(listener)}`);
    return this.#events.on(name, listener);
  }

  /**
   * The mesh's config with every field's effective value (defaults filled, durations in ms,
   * current field names): `createMesh(JSON.parse(JSON.stringify(mesh)))` builds the same mesh.
   * Functions, a Redis `client` object and secrets (a literal Kubernetes token, an inline PEM
   * private key) are left out; give them again.
   */
  toJSON(): MeshConfig {
    const json = meshToJSON(this.#parsed) as unknown as MeshConfig;
    return this.#istioConfig === null ? json : ({ ...json, istio: istioLiveToJSON(this.#istioConfig) } as unknown as MeshConfig);
  }

  /** A snapshot of every service and endpoint: traffic, failures, in-flight, latency, state; and of the inbound side. */
  stats(): MeshStats {
    const services: Record<string, ServiceStats> = {};
    for (const [name, svc] of this.#services) services[name] = svc.stats();
    const out: MeshStats = this.#inbound === null ? { services } : { services, inbound: this.#inbound.stats() };
    if (this.#istio !== null) out.istio = this.#istio.stats();
    return out;
  }

  /** The inbound side (src/inbound/, README "The inbound side"), made on first use. */
  get #in(): Inbound {
    return (this.#inbound ??= new Inbound(this.#inboundDeps));
  }

  /**
   * Wrap a `node:http` / `node:https` listener (an Express app is one): deadline and trace headers flow to the mesh
   * calls made while serving, responses carry a load report, limits answer 503 / 429. @throws InvalidConfigError
   */
  inbound(listener: RequestListener, options?: InboundOptions): (req: IncomingMessage, res: ServerResponse) => void {
    return this.#in.listener(listener, options);
  }

  /** {@link inbound} as an Express / Connect middleware (`app.use(mesh.middleware())`, first). */
  middleware(options?: InboundOptions): Middleware {
    return this.#in.middleware(options);
  }

  /** {@link inbound} as a Fastify plugin (`app.register(mesh.fastifyPlugin())`, at the root). */
  fastifyPlugin(options?: InboundOptions): FastifyPlugin {
    return this.#in.fastifyPlugin(options);
  }

  /** Kubernetes probes: `/healthz` (200 while alive) and `/readyz` (503 once draining); a listener and a middleware. */
  probes(options?: ProbeOptions): ProbeHandler {
    return this.#in.probes(options);
  }

  /** Drain: readiness fails, `Connection: close`, in-flight requests finish within `graceMs`, the mesh closes. @throws InvalidConfigError */
  drain(options?: DrainOptions): Promise<void> {
    return this.#in.drain(options, (graceMs) => this.close({ graceMs }));
  }

  /** On SIGTERM (or `signals`), {@link drain}, then let the signal end the process. Opt-in; returns `{ dispose() }`. */
  handleSignals(options?: SignalOptions): Disposable {
    return this.#in.handleSignals(options, (o) => this.drain(o));
  }

  /** @internal The service named `name`, for tests and the live view. */
  service(name: string): Service | undefined {
    return this.#services.get(name);
  }

  /**
   * Stop discovery and new requests, let in-flight ones finish — their retries included — for up
   * to `graceMs` (default 30 000; a duration as in config: ms or `'30s'`, at most 24 h), then end
   * whatever still runs with MESH_CLOSED and close every connection — upgraded ones (WebSocket,
   * tunnels) are held for and cut as requests are. A discovery source whose `stop()` has not
   * settled when the grace ends is left behind (warned of). Resolves once every request has
   * settled; nothing is sent after that. Idempotent: later calls return the same promise. Options
   * that are wrong reject it with an InvalidConfigError at `close.graceMs`, and nothing closes.
   */
  close(options?: { graceMs?: Duration } | null): Promise<void> {
    if (this.#closing === null) {
      let grace: number;
      try {
        grace = closeGraceMs(options);
      } catch (err) {
        return Promise.reject(err);
      }
      this.#graceMs = grace;
      this.#inbound?.stop();
      this.#closing = this.dispatcher.close().finally(() => {
        const hooks = this.#onClosed;
        this.#onClosed = null;
        for (const hook of hooks ?? []) {
          try {
            hook();
          } catch {
            // a hook is meshlet's own bookkeeping; it must not change how close() settles
          }
        }
      });
    }
    return this.#closing;
  }

  /**
   * @internal Call `hook` once {@link close} has settled — at once when it already has — for what
   * ends with the mesh (observability/metrics.ts). `dispose()` forgets it.
   */
  whenClosed(hook: () => void): Disposable {
    const hooks = this.#onClosed;
    if (hooks === null) {
      hook();
      return { dispose() {} };
    }
    hooks.add(hook);
    return { dispose: () => void hooks.delete(hook) };
  }
}

/** The longest grace `close` takes: 24 h, as the longest timeouts of the config (and within a timer's range). */
const MAX_GRACE_MS = 86_400_000;

/** `close`'s options (null or undefined: the defaults) → the grace, ms. @throws InvalidConfigError */
function closeGraceMs(options: unknown): number {
  if (options === undefined || options === null) return 30_000;
  const o = expectObject(options, 'close');
  rejectUnknown(o, ['graceMs'], 'close');
  return optDurationMs(o, 'graceMs', 'close', 30_000, { min: 0, max: MAX_GRACE_MS });
}

/**
 * Create a mesh from a configuration.
 * @throws InvalidConfigError naming the offending field when the config is wrong.
 */
export function createMesh(config: IstioMeshConfig): Mesh;
export function createMesh(config: MeshConfig): Mesh;
export function createMesh(config: MeshConfig | IstioMeshConfig): Mesh {
  return new Mesh(config);
}
