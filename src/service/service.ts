/**
 * A Service is one logical upstream: its endpoints (diffed from discovery snapshots), the pickers
 * built for them, its health model, its pipeline (pipeline.ts: the request path, layer by layer)
 * and its lifecycle.
 *
 * Endpoints live in an EndpointSet (endpoint-set.ts: snapshots diffed by address). Everything
 * that can be computed when endpoints change is computed then (`#rebuild`): every
 * target's picker over the endpoints that may take traffic. A request only reads it.
 *
 * How it closes — the grace, the cut, nothing sent after — is shutdown.ts; discovery's own state
 * (ready yet, counts, failing) is service-discovery.ts.
 *
 * Reconfigure (live config): `reconfigure` swaps in a new pipeline and targets built from a new
 * config while keeping endpoints, pools and discovery (reconfigure.ts says when it can).
 */
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { EndpointSpec } from '../core/endpoint-spec.js';
import type { Endpoint } from '../core/endpoint.js';
import { MeshClosedError, messageOf, TimeoutError } from '../core/errors.js';
import type { EventTopic, MeshEvents } from '../core/events.js';
import { StateWarning, type Logger } from '../core/log.js';
import type { BalancerDeps } from '../balancers/balancer.js';
import { readsLoadReports, readsRecentLatency } from '../balancers/config.js';
import type { DiscoverySource } from '../discovery/discovery.js';
import { ServiceHealth } from '../health/endpoint-health.js';
import type { AttemptOutcomeKind } from '../health/outcome.js';
import type { Locality } from '../routing/locality.js';
import { Call, type CallEnv, type MeshCall } from '../request/call.js';
import type { Layer } from '../request/layer.js';
import type { ParsedService } from './config.js';
import type { ParsedRoute } from '../layers/route.js';
import { handoffFor } from './handoff.js';
import { CrossServiceCounts } from '../layers/forward.js';
import { buildPipeline, closePipeline, type Pipeline } from './pipeline.js';
import { EndpointSet } from './endpoint-set.js';
import { callFailed, requestEvent, serviceStats, type ServiceStats } from './stats.js';
import { RetiringPipelines, sameEndpoints, sameHealth } from './reconfigure.js';
import { balancerDeps, ServiceTargets } from './targets.js';
import { ServiceDiscovery } from './service-discovery.js';
import { Shutdown } from './shutdown.js';
import { ServiceLoadReports } from './load-reports.js';

export type { EndpointStats, ServiceStats } from './stats.js';

/** Injected dependencies of a service. */
export interface ServiceDeps {
  readonly random: () => number;
  readonly now: () => number;
  readonly log: Logger;
  readonly events: MeshEvents;
  /** Where this process runs (for locality-aware balancing). */
  readonly locality: Locality;
  /** The user's interceptors for this service, as layers. */
  readonly interceptors: readonly Layer[];
  /** Routes of other services that send requests here (handoff.ts). */
  readonly imported: readonly ParsedRoute[];
  /** Another service of the mesh by name (once the mesh is built). */
  readonly peer: (name: string) => Service | undefined;
}

export class Service implements CallEnv {
  readonly name: string;
  readonly service: string;
  /** The config in force (a {@link reconfigure} replaces it). */
  config: ParsedService;
  readonly now: () => number;
  readonly random: () => number;
  hostHeader: 'service' | 'endpoint';
  /** True when a balancer of this service reads load reports (ORCA headers); else responses are not looked at for them. */
  loadReports = false;
  perRequestBufferLimitBytes: number;

  readonly #deps: ServiceDeps;
  readonly #endpoints: EndpointSet;
  #targets: ServiceTargets;
  #health: ServiceHealth;
  #pipeline: Pipeline;
  readonly #retiring = new RetiringPipelines();
  readonly #balancerDeps: BalancerDeps;
  /** Calls and mirrored copies other services' routes sent here. */
  readonly #from = new CrossServiceCounts();
  readonly #discovery: ServiceDiscovery;
  readonly #shutdown: Shutdown;
  /** Requests that ended here, and failed (stats.ts: callFailed): `stats()`' own counts, never summed from endpoints that come and go. */
  readonly #calls = { requests: 0, failures: 0 };
  /** The `request` event, checked once per request. */
  readonly #requestTopic: EventTopic<'request'>;
  /**
   * Mirrored copies from other services still running (made with the first copy). They are
   * fire-and-forget, so close cancels them when it starts instead of waiting them out.
   */
  #copies: Set<Call> | null = null;
  readonly #copyEnded = (call: MeshCall): void => {
    this.#copies!.delete(call as Call);
  };

  constructor(config: ParsedService, deps: ServiceDeps) {
    this.name = this.service = config.name;
    this.config = config;
    this.#deps = deps;
    this.now = deps.now;
    this.random = deps.random;
    this.hostHeader = config.hostHeader;
    this.perRequestBufferLimitBytes = config.perRequestBufferLimitBytes;
    this.#health = this.#newHealth(config);
    this.#discovery = new ServiceDiscovery(config.name, deps);
    this.#endpoints = new EndpointSet(config, { log: deps.log, cut: () => this.#shutdown.cut, hostHeader: () => this.hostHeader });
    this.#shutdown = new Shutdown(this.#endpoints, (graceMs) =>
      deps.log.warn(`service ${this.name}: discovery had not stopped when the grace of ${graceMs} ms ended; closing without waiting for it`),
    );
    this.#readLoad(config);
    this.#balancerDeps = balancerDeps(config.name, deps.random, deps.now);
    this.#targets = new ServiceTargets(config);
    this.#pipeline = this.#newPipeline(config);
    this.#requestTopic = deps.events.topic('request');
  }

  /** What attempts feed and read of the endpoints' load: what the service's balancers read. */
  #readLoad(config: ParsedService): void {
    const balancers = [config.balancer, ...config.subsets.map((x) => x.balancer)];
    this.loadReports = readsLoadReports(balancers);
    this.#endpoints.load.recentLatency = readsRecentLatency(balancers);
  }

  #newHealth(config: ParsedService): ServiceHealth {
    const d = this.#deps;
    return new ServiceHealth(config.health, { service: config.name, changed: () => this.refresh(), now: d.now, random: d.random, log: d.log, events: d.events });
  }

  #newPipeline(config: ParsedService): Pipeline {
    const d = this.#deps;
    return buildPipeline({
      config,
      whole: this.#targets.whole,
      subsets: this.#targets.subsets,
      random: d.random,
      now: d.now,
      log: d.log,
      events: d.events,
      interceptors: d.interceptors,
      imported: d.imported,
      handoff: handoffFor(this, d.peer),
      admit: (ep, target) => this.#health.admit(ep, target.panicking),
      unadmit: (ep) => this.#health.unadmit(ep),
      endpointCount: () => this.#endpoints.size,
      lastDiscoveryError: () => this.#discovery.lastError,
      cut: () => this.#shutdown.cut,
    });
  }

  /**
   * Replace this service's routing and policy config at once: a new pipeline is swapped in, so a
   * request sees the old config or the new one, never a mix; requests already running finish on
   * the old one, closed once they have settled. Endpoints, pools and discovery are kept; an
   * unchanged target keeps its balancer state, an unchanged health config its ejections and probes
   * (a changed one starts fresh). Returns false, changing nothing, when `next` changes what the
   * endpoints are made of (reconfigure.ts) or the service is closed: replace the service then.
   * `next` must have been parsed for this service (same name; the caller keeps its host names).
   */
  reconfigure(next: ParsedService): boolean {
    if (this.#shutdown.closed || next.name !== this.name || !sameEndpoints(this.config, next)) return false;
    this.#targets = new ServiceTargets(next, this.#targets);
    if (!sameHealth(this.config, next)) {
      void this.#health.close();
      this.#health = this.#newHealth(next);
      this.#health.takeOver(this.#endpoints.active());
    }
    const retired = this.#pipeline;
    this.config = next;
    this.hostHeader = next.hostHeader;
    this.#readLoad(next);
    this.perRequestBufferLimitBytes = next.perRequestBufferLimitBytes;
    this.#pipeline = this.#newPipeline(next);
    if (this.#discovery.ready) {
      this.#pipeline.ready.ready();
      this.#rebuild();
    }
    this.#retiring.add(retired, (fn) => this.#shutdown.live.forEach(fn), closePipeline);
    return true;
  }

  /** Start discovery (requests wait up to `readyTimeoutMs` for its first answer); throws as startDiscovery. */
  start(): void {
    const d = this.#deps;
    this.#discovery.start(this.config, { update: (specs) => this.#applyUpdate(specs), known: () => this.#endpoints.size, now: d.now, random: d.random });
  }

  /** Settles once discovery has answered for the first time, or the service closed. */
  whenReady(): Promise<void> {
    return this.#shutdown.closed ? Promise.resolve() : this.#discovery.whenReady();
  }

  /** The running discovery source (e.g. a StaticSource whose list can be replaced). */
  get source(): DiscoverySource | null {
    return this.#discovery.source;
  }

  // ===== requests =====

  dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler, host: string): void {
    this.#enter(new Call(this, opts, handler, host, this.#targets.whole), this.#pipeline.entry);
  }

  #enter(call: Call, entry: (call: Call) => void): void {
    this.#shutdown.live.add(call);
    if (!call.start()) return;
    if (this.#shutdown.closed) return call.fail(new MeshClosedError());
    call.inDispatch = true;
    try {
      entry(call);
    } finally {
      call.inDispatch = false;
    }
  }

  /** @internal A call another service's route hands over (handoff.ts), to `subset` (or the whole), as that route `route` says. */
  adopt(call: Call, subset: string | null, from: string, route: ParsedRoute): void {
    this.#from.add(from);
    call.env = this;
    call.via = from;
    call.target = this.#targets.get(subset);
    const i = this.#deps.imported.indexOf(route);
    call.routeIndex = i < 0 ? -1 : this.config.routes.length + i;
    this.#shutdown.live.add(call);
    if (this.#shutdown.closed) return call.fail(new MeshClosedError());
    this.#pipeline.routed(call);
  }

  /**
   * @internal A mirrored copy from service `from` (handoff.ts) to `subset` (or the whole), past the
   * routes, with the sending route's timeout `timeoutMs` (this service's own applies too: the earlier holds).
   */
  copy(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler, host: string, subset: string | null, from: string, timeoutMs: number): void {
    this.#from.add(from);
    const call = new Call(this, opts, handler, host, this.#targets.get(subset));
    call.via = from;
    call.setDeadline(timeoutMs, () => new TimeoutError(this.name, timeoutMs, { attempts: call.attempt + 1, endpoint: call.endpoint }));
    (this.#copies ??= new Set()).add(call);
    call.onEnd(this.#copyEnded);
    this.#enter(call, this.#pipeline.routed);
  }

  /** @internal `call` was handed over to another service: no longer this one's to settle. */
  release(call: Call): void {
    this.#shutdown.left(call);
  }

  /** CallEnv: one attempt's outcome, for the health model and the adaptive limit. */
  observe(endpoint: Endpoint, kind: AttemptOutcomeKind, status: number, latencyMs: number, nowMs: number): void {
    this.#health.record(endpoint, kind, nowMs);
    this.#pipeline.adaptive?.observe(kind, status, latencyMs, nowMs);
  }

  #reports: ServiceLoadReports | null = null;

  /** CallEnv: a response's headers, for `endpoint`'s load report. */
  loadReport(endpoint: Endpoint, headers: Record<string, string | string[] | undefined>, nowMs: number, sentRif: number): void {
    (this.#reports ??= new ServiceLoadReports(this.name, this.#deps.log)).read(endpoint, headers, nowMs, sentRif);
  }

  /** CallEnv: a request's connection was upgraded: it holds a close as a request does (shutdown.ts). */
  upgraded(socket: Duplex): void {
    this.#shutdown.tunnel(socket);
  }

  /** Warns of the first `call.onEnd` listener that throws (made then); later ones go to debug. */
  #endThrew: StateWarning | null = null;

  /** CallEnv: a `call.onEnd` listener threw (an interceptor's, most likely); the request ended as it would have. */
  endListenerThrew(err: unknown): void {
    (this.#endThrew ??= new StateWarning(this.#deps.log)).warn(
      'threw',
      `service ${this.name}: a call.onEnd listener threw; the request ended as it would have (warned once, later ones at debug level): ${messageOf(err)}`,
    );
  }

  /** CallEnv: a request settled. */
  ended(call: Call): void {
    // No longer live (a waiting close goes on once its continuation runs, after this returns).
    this.#shutdown.left(call);
    const calls = this.#calls;
    calls.requests++;
    if (callFailed(call)) calls.failures++;
    if (this.#retiring.size > 0) this.#retiring.ended(call, closePipeline);
    const topic = this.#requestTopic;
    if (topic.wanted) topic.emit(requestEvent(call, this.name, this.now()));
  }

  // ===== discovery updates =====

  #applyUpdate(specs: readonly EndpointSpec[]): void {
    if (this.#shutdown.closed) return;
    const discovery = this.#discovery;
    discovery.answered(specs.length);
    const { added, removed, changed } = this.#endpoints.apply(specs);
    for (const ep of removed) this.#health.remove(ep);
    for (const ep of added) this.#health.add(ep, discovery.ready);
    this.#deps.events.emit('discovery-update', { service: this.name, endpoints: this.#endpoints.size, added: added.length, removed: removed.length });
    if (changed || !discovery.ready) this.#rebuild();
    discovery.markReady();
    this.#deps.log.debug(`service ${this.name}: ${this.#endpoints.size} endpoints`);
    this.#pipeline.ready.ready();
    this.#retiring.ready();
  }

  /** Rebuild every target's picker (see routing/target.ts for how tiers and panic work). */
  #rebuild(): void {
    const d = this.#deps;
    this.#targets.rebuild(this.#endpoints.active(), {
      service: this.name,
      locality: d.locality,
      panicThresholdPercent: this.config.health.panicThresholdPercent,
      balancer: this.#balancerDeps,
      log: d.log,
      events: d.events,
    });
  }

  /** Re-run the balancer factories (availability of an endpoint changed). */
  refresh(): void {
    if (!this.#shutdown.closed) this.#rebuild();
  }

  // ===== lifecycle and stats =====

  /**
   * Stop discovery and admissions, let in-flight requests finish within `graceMs`, cut the rest,
   * then close every pool. Resolves once every request has settled and every pool closed.
   */
  close(graceMs: number): Promise<void> {
    return this.#shutdown.close(graceMs, () => this.#stopParts());
  }

  /** Cut every request now (also when a close is already waiting out its grace). */
  destroy(): Promise<void> {
    return this.#shutdown.destroy(() => this.#stopParts());
  }

  /**
   * What closing stops before it waits for the requests: discovery, health, the pipelines, TLS —
   * and the mirrored copies other services sent here, which never hold a close (the mirroring
   * service's pipeline cancels the copies it sends straight to its own endpoints).
   */
  #stopParts(): Promise<void> {
    const stopping = this.#discovery.stop();
    const health = this.#health.close();
    closePipeline(this.#pipeline);
    this.#retiring.closeAll(closePipeline);
    if (this.#copies !== null) for (const call of [...this.#copies]) call.abort(new MeshClosedError());
    this.#endpoints.closeTls();
    return Promise.all([stopping, health]).then(() => {});
  }

  /** Current endpoints (active ones), for stats and tests. */
  endpoints(): Endpoint[] {
    return this.#endpoints.active();
  }

  /** @internal Active and draining endpoints, as stats() lists them (metrics count each one's requests). */
  allEndpoints(): Endpoint[] {
    return this.#endpoints.all();
  }

  stats(): ServiceStats {
    return serviceStats({
      config: this.config,
      now: this.now(),
      ready: this.#discovery.ready,
      calls: this.#calls,
      endpoints: this.#endpoints.all(),
      health: this.#health,
      layers: this.#pipeline.layers,
      rateLimited: this.#pipeline.refusals.count,
      elsewhere: { routedTo: this.#pipeline.routedTo.toJSON(), mirroredTo: this.#pipeline.mirroredTo.toJSON(), receivedFrom: this.#from.toJSON() },
      discovery: this.#discovery,
    });
  }
}
