/**
 * A Service is one logical upstream: its endpoints (diffed from discovery snapshots), the pickers
 * built for them, its health model, its pipeline (pipeline.ts: the request path, layer by layer)
 * and its lifecycle.
 *
 * Endpoints live in an EndpointSet (endpoint-set.ts: snapshots diffed by address). Everything
 * that can be computed when endpoints change is computed then (`#rebuild`): every
 * target's picker over the endpoints that may take traffic. A request only reads it.
 *
 * Close: discovery stops, requests still waiting for a slot or for discovery fail with
 * MESH_CLOSED, in-flight requests — retries included — go on within the grace; whatever is still
 * running when it ends is cut (MESH_CLOSED, no retry, nothing counted against an endpoint). Then
 * the pools close, and nothing is sent or created after that. `close()` resolves once every
 * request has settled.
 *
 * Reconfigure (live config): `reconfigure` swaps in a new pipeline and targets built from a new
 * config while keeping endpoints, pools and discovery (reconfigure.ts says when it can).
 */
import type { Dispatcher } from 'undici';
import type { EndpointSpec } from '../core/endpoint-spec.js';
import type { Endpoint } from '../core/endpoint.js';
import { MeshClosedError, NoHealthyEndpointError } from '../core/errors.js';
import type { MeshEvents } from '../core/events.js';
import type { Logger } from '../core/log.js';
import { DEFAULT_DECAY_MS } from '../balancers/peak-ewma.js';
import type { BalancerDeps } from '../balancers/balancer.js';
import { readsLoadReports, readsRecentLatency } from '../balancers/config.js';
import { startDiscovery, type DiscoveryContext, type DiscoverySource } from '../discovery/discovery.js';
import { ServiceHealth } from '../health/endpoint-health.js';
import { LoadReportReader } from '../load/orca.js';
import type { AttemptOutcomeKind } from '../health/outcome.js';
import { TlsMaterial } from '../security/tls.js';
import type { Locality } from '../routing/locality.js';
import { Target } from '../routing/target.js';
import { Call, type CallEnv } from '../request/call.js';
import { LiveCalls } from '../request/live-calls.js';
import type { Layer } from '../request/layer.js';
import type { ParsedService } from './config.js';
import type { ParsedRoute } from '../layers/route.js';
import { handoffFor } from './handoff.js';
import { CrossServiceCounts } from '../layers/forward.js';
import { buildPipeline, closePipeline, type Pipeline } from './pipeline.js';
import { EndpointSet } from './endpoint-set.js';
import { meshHost } from './hosts.js';
import { serviceStats, type ServiceStats } from './stats.js';
import { RetiringPipelines, sameEndpoints, sameHealth, targetKey } from './reconfigure.js';

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
  #whole: Target;
  #subsets = new Map<string, Target>();
  #health: ServiceHealth;
  #pipeline: Pipeline;
  readonly #retiring = new RetiringPipelines();
  readonly #tls: TlsMaterial | null;
  readonly #balancerDeps: BalancerDeps;
  readonly #stop = new AbortController();
  /** Calls and mirrored copies other services' routes sent here. */
  readonly #from = new CrossServiceCounts();
  #source: DiscoverySource | null = null;
  #ready = false;
  #whenReady: { promise: Promise<void>; resolve: () => void } | null = null;
  #updates = 0;
  #discoveryErrors = 0;
  #lastDiscoveryError: string | undefined;
  #discoveryFailing = false;
  /** Requests not yet settled: an intrusive list (no allocation per request). */
  readonly #live = new LiveCalls();
  #closed = false;
  #cut = false;
  #settled: (() => void) | null = null;
  /** Ends close's grace early (destroy while closing). */
  #endGrace: (() => void) | null = null;
  #closing: Promise<void> | null = null;
  #destroyed = false;

  constructor(config: ParsedService, deps: ServiceDeps) {
    this.name = this.service = config.name;
    this.config = config;
    this.#deps = deps;
    this.now = deps.now;
    this.random = deps.random;
    this.hostHeader = config.hostHeader;
    this.perRequestBufferLimitBytes = config.perRequestBufferLimitBytes;
    this.#health = this.#newHealth(config);
    this.#tls = config.tls
      ? new TlsMaterial(config.tls, {
          log: deps.log,
          connectTimeoutMs: config.pool.connectTimeoutMs,
          defaultServername: config.hosts[0] ?? config.name,
          meshHost: meshHost(config),
        })
      : null;
    const decay = (config.balancer.options as { decayMs?: unknown } | null)?.decayMs;
    this.#endpoints = new EndpointSet({
      pool: config.pool,
      tls: this.#tls,
      decayMs: typeof decay === 'number' ? decay : DEFAULT_DECAY_MS,
      log: deps.log,
      cut: () => this.#cut,
    });
    this.#readLoad(config);
    const noEndpoint = { type: 'fail' as const, error: new NoHealthyEndpointError(config.name, 'every endpoint was excluded') };
    this.#balancerDeps = Object.freeze({ service: config.name, random: deps.random, now: deps.now, noEndpoint });
    this.#whole = new Target(null, config.balancer, config.localityLb);
    for (const s of config.subsets) this.#subsets.set(s.name, new Target(s, s.balancer ?? config.balancer, config.localityLb));
    this.#pipeline = this.#newPipeline(config);
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
      whole: this.#whole,
      subsets: this.#subsets,
      random: d.random,
      now: d.now,
      log: d.log,
      events: d.events,
      interceptors: d.interceptors,
      imported: d.imported,
      handoff: handoffFor(this, d.peer),
      admit: (ep) => this.#health.admit(ep),
      endpointCount: () => this.#endpoints.size,
      lastDiscoveryError: () => this.#lastDiscoveryError,
      cut: () => this.#cut,
    });
  }

  /**
   * Replace this service's routing and policy config at once (routes, subsets, balancers,
   * retries, hedging, timeouts, limits, rate limits, breakers, health): a new pipeline is built and
   * swapped in, so a request sees either the old config or the new one, never a mix. Requests
   * already running finish on the old pipeline, whose layers close once they have settled. The
   * endpoints, their pools and discovery are kept; a target (subset) whose definition is unchanged
   * keeps its balancer state, and an unchanged health config keeps ejections and probes (a changed
   * one starts fresh: every endpoint available).
   * Returns false, changing nothing, when `next` changes what the endpoints are made of —
   * discovery, pool or TLS (reconfigure.ts) — or the service is closed: replace the service then.
   * `next` must have been parsed for this service (same name; the caller keeps its host names).
   */
  reconfigure(next: ParsedService): boolean {
    if (this.#closed || next.name !== this.name || !sameEndpoints(this.config, next)) return false;
    const old = { whole: this.#whole, subsets: this.#subsets };
    const keep = new Map<string, Target>();
    for (const t of [old.whole, ...old.subsets.values()]) keep.set(targetKey(t.subset === null ? null : { name: t.subset, labels: t.labels ?? {} }, t.balancer, this.config.localityLb), t);
    const target = (s: ParsedService['subsets'][number] | null, b: ParsedService['balancer']): Target => keep.get(targetKey(s, b, next.localityLb)) ?? new Target(s, b, next.localityLb);
    this.#whole = target(null, next.balancer);
    this.#subsets = new Map(next.subsets.map((s) => [s.name, target(s, s.balancer ?? next.balancer)]));
    if (!sameHealth(this.config, next)) {
      const before = this.#health;
      this.#health = this.#newHealth(next);
      before.close();
      // A new health model starts fresh: what the old one ejected is available again.
      for (const ep of this.#endpoints.active()) {
        ep.available = true;
        this.#health.add(ep, false);
      }
    }
    const retired = this.#pipeline;
    this.config = next;
    this.hostHeader = next.hostHeader;
    this.#readLoad(next);
    this.perRequestBufferLimitBytes = next.perRequestBufferLimitBytes;
    this.#pipeline = this.#newPipeline(next);
    if (this.#ready) {
      this.#pipeline.ready.ready();
      this.#rebuild();
    }
    this.#retiring.add(retired, (fn) => this.#live.forEach(fn), closePipeline);
    return true;
  }

  /** Start discovery (requests wait up to `readyTimeoutMs` for its first answer); throws as startDiscovery. */
  start(): void {
    const ctx: DiscoveryContext = {
      service: this.name,
      update: (specs) => this.#applyUpdate(specs),
      error: (err) => this.#discoveryError(err),
      signal: this.#stop.signal,
      log: this.#deps.log,
      now: this.#deps.now,
      random: this.#deps.random,
    };
    this.#source = startDiscovery(this.config.discovery, this.config.discoveryType, this.config.discoveryOptions, ctx, `services.${this.name}.discovery`);
  }

  /** Settles once discovery has answered for the first time, or the service closed. */
  whenReady(): Promise<void> {
    if (this.#ready || this.#closed) return Promise.resolve();
    if (this.#whenReady === null) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.#whenReady = { promise, resolve };
    }
    return this.#whenReady.promise;
  }

  /** The running discovery source (e.g. a StaticSource whose list can be replaced). */
  get source(): DiscoverySource | null {
    return this.#source;
  }

  // ===== requests =====

  dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler, host: string): void {
    this.#enter(new Call(this, opts, handler, host, this.#whole), this.#pipeline.entry);
  }

  #enter(call: Call, entry: (call: Call) => void): void {
    this.#live.add(call);
    if (!call.start()) return;
    if (this.#closed) return call.fail(new MeshClosedError());
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
    call.target = subset === null ? this.#whole : this.#subsets.get(subset)!;
    const i = this.#deps.imported.indexOf(route);
    call.routeIndex = i < 0 ? -1 : this.config.routes.length + i;
    this.#live.add(call);
    if (this.#closed) return call.fail(new MeshClosedError());
    this.#pipeline.routed(call);
  }

  /** @internal A mirrored copy from service `from` (handoff.ts) to `subset` (or the whole), past the routes. */
  copy(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler, host: string, subset: string | null, from: string): void {
    this.#from.add(from);
    const call = new Call(this, opts, handler, host, subset === null ? this.#whole : this.#subsets.get(subset)!);
    call.via = from;
    this.#enter(call, this.#pipeline.routed);
  }

  /** @internal `call` was handed over to another service: no longer this one's to settle. */
  release(call: Call): void {
    this.#live.delete(call);
    if (this.#live.size === 0) this.#settled?.();
  }


  /** CallEnv: one attempt's outcome, for the health model. Records are synchronous: one object serves all. */
  observe(endpoint: Endpoint, kind: AttemptOutcomeKind, status: number, latencyMs: number, nowMs: number): void {
    const o = this.#outcome;
    o.kind = kind;
    o.status = status;
    o.latencyMs = latencyMs;
    o.nowMs = nowMs;
    this.#health.record(endpoint, o);
    this.#pipeline.adaptive?.observe(kind, status, latencyMs, nowMs);
  }

  readonly #outcome: { kind: AttemptOutcomeKind; status: number; latencyMs: number; nowMs: number } = { kind: 'success', status: 0, latencyMs: 0, nowMs: 0 };

  #reports: LoadReportReader | null = null;

  /** CallEnv: a response's headers, for `endpoint`'s load report. An invalid one is counted, and warned about once per endpoint. */
  loadReport(endpoint: Endpoint, headers: Record<string, string | string[] | undefined>, nowMs: number, sentRif: number): void {
    const r = (this.#reports ??= new LoadReportReader()).read(headers);
    if (r === null) return;
    const load = endpoint.load;
    if (r.type === 'report') return load.report(r.report, nowMs, sentRif);
    const line = `service ${this.name}: endpoint ${endpoint.key} sent an invalid load report, ignored: ${r.reason}`;
    if (load.invalidReports++ === 0) this.#deps.log.warn(`${line} (later ones are only counted: stats invalidLoadReports)`);
    else this.#deps.log.debug(line);
  }

  /** CallEnv: a request settled. */
  ended(call: Call): void {
    this.#live.delete(call);
    if (this.#retiring.size > 0) this.#retiring.ended(call, closePipeline);
    const events = this.#deps.events;
    if (events.wants('request')) {
      events.emit('request', {
        service: this.name,
        endpoint: call.endpoint,
        subset: call.target.subset ?? undefined,
        via: call.via ?? undefined,
        method: call.opts.method,
        status: call.status,
        error: call.error === undefined ? undefined : ((call.error as { code?: string }).code ?? call.error.name),
        attempts: call.attempt + 1,
        durationMs: this.now() - call.startMs,
      });
    }
    if (this.#live.size === 0) this.#settled?.();
  }

  // ===== discovery updates =====

  #applyUpdate(specs: readonly EndpointSpec[]): void {
    if (this.#closed) return;
    if (this.#discoveryFailing) {
      this.#discoveryFailing = false;
      this.#deps.log.warn(`service ${this.name}: discovery answers again (${specs.length} endpoints)`);
    }
    const { added, removed, changed } = this.#endpoints.apply(specs);
    for (const ep of removed) this.#health.remove(ep);
    for (const ep of added) this.#health.add(ep, this.#ready);
    this.#updates++;
    this.#deps.events.emit('discovery-update', { service: this.name, endpoints: this.#endpoints.size, added: added.length, removed: removed.length });
    if (changed || !this.#ready) this.#rebuild();
    this.#ready = true;
    this.#whenReady?.resolve();
    this.#deps.log.debug(`service ${this.name}: ${this.#endpoints.size} endpoints`);
    this.#pipeline.ready.ready();
    this.#retiring.ready();
  }

  /** Discovery failed: counted and announced always; warned about once per change of state. */
  #discoveryError(err: Error): void {
    this.#discoveryErrors++;
    this.#lastDiscoveryError = err.message;
    this.#deps.events.emit('discovery-error', { service: this.name, message: err.message });
    const line = `service ${this.name}: discovery failed, keeping ${this.#endpoints.size} known endpoints: ${err.message}`;
    if (this.#discoveryFailing) this.#deps.log.debug(line);
    else {
      this.#discoveryFailing = true;
      this.#deps.log.warn(line);
    }
  }

  /** Rebuild every target's picker (see routing/target.ts for how tiers and panic work). */
  #rebuild(): void {
    const all = this.#endpoints.active();
    const eligible = (candidates: readonly Endpoint[]): readonly Endpoint[] => this.#health.eligible(candidates);
    const deps = this.#balancerDeps;
    for (const t of [this.#whole, ...this.#subsets.values()]) {
      t.rebuild(all, this.#deps.locality, eligible, deps);
      if (t.buildError !== null) this.#deps.log.warn(`service ${this.name}${t.subset === null ? '' : `, subset ${t.subset}`}: ${t.buildError}`);
    }
  }

  /** Re-run the balancer factories (availability of an endpoint changed). */
  refresh(): void {
    if (!this.#closed) this.#rebuild();
  }

  // ===== lifecycle and stats =====

  /**
   * Stop discovery and admissions, let in-flight requests finish within `graceMs`, cut the rest,
   * then close every pool. Resolves once every request has settled and every pool closed.
   */
  close(graceMs: number): Promise<void> {
    return (this.#closing ??= this.#close(graceMs));
  }

  async #close(graceMs: number): Promise<void> {
    this.#closed = true;
    this.#whenReady?.resolve();
    this.#stop.abort();
    this.#health.close();
    closePipeline(this.#pipeline);
    this.#retiring.closeAll(closePipeline);
    this.#tls?.close();
    try {
      await this.#source?.stop();
    } catch (err) {
      this.#deps.log.warn(`service ${this.name}: stopping discovery failed: ${(err as Error).message}`);
    }
    if (this.#live.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.#settled = this.#endGrace = resolve;
        timer = setTimeout(resolve, this.#destroyed ? 0 : graceMs);
      });
      this.#endGrace = null;
      clearTimeout(timer);
      if (this.#live.size > 0) await this.#cutOff();
    }
    this.#cut = true;
    await this.#endpoints.close();
  }

  /** The grace ran out: every request still running ends with MESH_CLOSED. */
  async #cutOff(): Promise<void> {
    this.#cut = true;
    const settled = new Promise<void>((resolve) => (this.#settled = resolve));
    this.#live.forEach((c) => c.abort(new MeshClosedError()));
    if (this.#live.size > 0) {
      // Attempts abort asynchronously; destroying the pools settles any that still hold on.
      await this.#endpoints.destroy();
      await settled;
    }
  }

  /** Cut every request now (also when a close is already waiting out its grace). */
  destroy(): Promise<void> {
    this.#destroyed = true;
    const closing = this.close(0);
    this.#endGrace?.();
    return closing;
  }

  /** Current endpoints (active ones), for stats and tests. */
  endpoints(): Endpoint[] {
    return this.#endpoints.active();
  }

  stats(): ServiceStats {
    return serviceStats({
      config: this.config,
      now: this.now(),
      ready: this.#ready,
      endpoints: this.#endpoints.all(),
      health: this.#health,
      layers: this.#pipeline.layers,
      rateLimited: this.#pipeline.refusals.count,
      elsewhere: { routedTo: this.#pipeline.routedTo.toJSON(), mirroredTo: this.#pipeline.mirroredTo.toJSON(), receivedFrom: this.#from.toJSON() },
      discovery: { updates: this.#updates, errors: this.#discoveryErrors, lastError: this.#lastDiscoveryError },
    });
  }
}
