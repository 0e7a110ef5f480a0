/**
 * A Service is one logical upstream: its endpoints (diffed from discovery snapshots), the picker
 * built for them, and the request path that picks an endpoint and sends an attempt.
 *
 * Everything that can be computed when endpoints change is computed then (`#rebuild`): the picker,
 * the list of endpoints that may take traffic. A request reads the current picker and the live
 * numbers on endpoints, nothing more.
 */
import { Pool, type Dispatcher } from 'undici';
import type { BalancerDeps, Picker, PickFailed } from '../balancers/balancer.js';
import { hash32 } from '../balancers/hash.js';
import type { ParsedService, HashRequest } from '../config/mesh-config.js';
import type { DiscoveryContext, DiscoverySource } from '../discovery/discovery.js';
import type { Logger } from '../observability/log.js';
import { Endpoint } from './endpoint.js';
import type { EndpointSpec } from './endpoint-spec.js';
import { MeshClosedError, MeshError, NoHealthyEndpointError } from './errors.js';
import { getHeader, withHost } from './headers.js';
import { MeshRequest } from './request.js';

/** Injected dependencies of a service. */
export interface ServiceDeps {
  readonly random: () => number;
  readonly now: () => number;
  readonly log: Logger;
}

/** Snapshot of one endpoint for `mesh.stats()`. */
export interface EndpointStats {
  url: string;
  weight: number;
  zone: string | undefined;
  region: string | undefined;
  labels: Record<string, string>;
  /** `healthy`, `unavailable` (ejected or failing checks), `draining` (removed, finishing in-flight requests). */
  state: 'healthy' | 'unavailable' | 'draining';
  inFlight: number;
  requests: number;
  failures: number;
  /** Peak-EWMA latency estimate in ms (0 before the first response). */
  latencyEwmaMs: number;
}

/** Snapshot of one service for `mesh.stats()`. */
export interface ServiceStats {
  balancer: string;
  discovery: string;
  /** True once discovery has answered at least once. */
  ready: boolean;
  requests: number;
  failures: number;
  inFlight: number;
  /** Endpoint-set updates applied. */
  discoveryUpdates: number;
  /** Discovery failures reported (the last good set was kept). */
  discoveryErrors: number;
  lastDiscoveryError: string | undefined;
  endpoints: EndpointStats[];
}

type Waiter = MeshRequest;

export class Service {
  readonly name: string;
  readonly config: ParsedService;
  readonly now: () => number;

  readonly #deps: ServiceDeps;
  readonly #endpoints = new Map<string, Endpoint>();
  readonly #draining = new Set<Endpoint>();
  readonly #load = { inFlight: 0 };
  #picker: Picker | null = null;
  readonly #noEndpoint: PickFailed;
  readonly #balancerDeps: BalancerDeps;
  #source: DiscoverySource | null = null;
  readonly #stop = new AbortController();
  #ready = false;
  #readyFailed = false;
  #readyTimer: NodeJS.Timeout | null = null;
  #waiters = new Set<Waiter>();
  #closed = false;
  #updates = 0;
  #discoveryErrors = 0;
  #lastDiscoveryError: string | undefined;

  constructor(config: ParsedService, deps: ServiceDeps) {
    this.name = config.name;
    this.config = config;
    this.#deps = deps;
    this.now = deps.now;
    this.#noEndpoint = Object.freeze({
      type: 'fail' as const,
      error: new NoHealthyEndpointError(config.name, 'every endpoint was excluded'),
    });
    this.#balancerDeps = Object.freeze({ service: config.name, random: deps.random, now: deps.now, noEndpoint: this.#noEndpoint });
  }

  /** Start discovery. Requests that arrive before its first answer wait up to `readyTimeout`. */
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
    this.#source = this.config.discovery.create(this.config.discoveryOptions, ctx);
    if (!this.#ready && this.config.readyTimeoutMs >= 0) {
      this.#readyTimer = setTimeout(() => {
        this.#readyTimer = null;
        if (this.#ready) return;
        this.#readyFailed = true;
        this.#flushWaiters();
      }, this.config.readyTimeoutMs);
      this.#readyTimer.unref?.();
    }
  }

  /** The running discovery source (e.g. a StaticSource whose list can be replaced). */
  get source(): DiscoverySource | null {
    return this.#source;
  }

  // ===== discovery updates =====

  #applyUpdate(specs: readonly EndpointSpec[]): void {
    if (this.#closed) return;
    const next = new Map<string, EndpointSpec>();
    for (const spec of specs) {
      if (next.has(spec.origin)) this.#deps.log.debug(`service ${this.name}: duplicate endpoint ${spec.origin} ignored`);
      else next.set(spec.origin, spec);
    }
    let changed = !this.#ready;
    for (const [key, ep] of this.#endpoints) {
      if (!next.has(key)) {
        this.#endpoints.delete(key);
        this.#drain(ep);
        changed = true;
      }
    }
    for (const [key, spec] of next) {
      const ep = this.#endpoints.get(key);
      if (ep) {
        if (ep.update(spec)) changed = true;
      } else {
        this.#endpoints.set(key, this.#createEndpoint(spec));
        changed = true;
      }
    }
    this.#updates++;
    if (changed) this.#rebuild();
    if (!this.#ready) {
      this.#ready = true;
      if (this.#readyTimer !== null) clearTimeout(this.#readyTimer);
      this.#readyTimer = null;
    }
    this.#deps.log.debug(`service ${this.name}: ${this.#endpoints.size} endpoints`);
    this.#flushWaiters();
  }

  #discoveryError(err: Error): void {
    this.#discoveryErrors++;
    this.#lastDiscoveryError = err.message;
    this.#deps.log.warn(`service ${this.name}: discovery failed, keeping ${this.#endpoints.size} known endpoints: ${err.message}`);
  }

  #createEndpoint(spec: EndpointSpec): Endpoint {
    const p = this.config.pool;
    const pool = new Pool(spec.origin, {
      connections: p.connections,
      pipelining: p.pipelining,
      keepAliveTimeout: p.keepAliveTimeoutMs,
      connectTimeout: p.connectTimeoutMs,
      headersTimeout: p.headersTimeoutMs,
      bodyTimeout: p.bodyTimeoutMs,
    });
    return new Endpoint(spec, pool, { decayMs: 10_000 }, this.#load);
  }

  /** A removed endpoint takes no new requests, finishes its in-flight ones, then its pool closes. */
  #drain(ep: Endpoint): void {
    ep.state = 'draining';
    this.#draining.add(ep);
    ep.dispatcher.close().then(
      () => {
        ep.state = 'closed';
        this.#draining.delete(ep);
      },
      (err: Error) => this.#deps.log.warn(`service ${this.name}: closing ${ep.key} failed: ${err.message}`),
    );
  }

  /**
   * Rebuild the picker over the endpoints that may take traffic: the highest-priority group (lowest
   * number) that has an available endpoint; if no endpoint anywhere is available, all of the
   * highest-priority group (panic: better to try than to refuse).
   */
  #rebuild(): void {
    const all = [...this.#endpoints.values()];
    let best = Infinity;
    for (const e of all) if (e.available && e.priority < best) best = e.priority;
    let eligible: Endpoint[];
    if (best !== Infinity) eligible = all.filter((e) => e.available && e.priority === best);
    else {
      const top = Math.min(...all.map((e) => e.priority));
      eligible = all.filter((e) => e.priority === top);
    }
    this.#picker = eligible.length === 0 ? null : this.config.balancer.create(eligible, this.config.balancerOptions, this.#balancerDeps);
  }

  /** Re-run the balancer factory (availability of an endpoint changed). */
  refresh(): void {
    if (!this.#closed) this.#rebuild();
  }

  // ===== requests =====

  dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler, host: string): void {
    const req = new MeshRequest(this, opts, handler, host);
    if (this.#closed) {
      req.fail(new MeshClosedError());
      return;
    }
    if (!req.start(this.config.timeoutMs)) return;
    if (this.config.balancer.usesHash) req.hash = this.#hash(opts);
    if (this.#ready) this.#send(req);
    else if (this.#readyFailed) req.fail(new NoHealthyEndpointError(this.name, 'discovery has not answered yet'));
    else this.#waiters.add(req);
  }

  #flushWaiters(): void {
    if (this.#waiters.size === 0) return;
    const waiters = this.#waiters;
    this.#waiters = new Set();
    for (const req of waiters) {
      if (req.done) continue;
      if (this.#closed) req.fail(new MeshClosedError());
      else if (this.#ready) this.#send(req);
      else req.fail(new NoHealthyEndpointError(this.name, 'discovery has not answered yet'));
    }
  }

  #send(req: MeshRequest): void {
    const picker = this.#picker;
    if (picker === null) {
      req.fail(new NoHealthyEndpointError(this.name, 'discovery reports no endpoints'));
      return;
    }
    const result = picker.pick(req);
    if (result.type === 'pick') req.send(result.endpoint, this.now());
    else req.fail(result.error);
  }

  /** Dispatch options for one attempt at `endpoint`. */
  endpointOptions(req: MeshRequest, endpoint: Endpoint): Dispatcher.DispatchOptions {
    const opts = req.opts;
    return {
      ...opts,
      origin: endpoint.key,
      headers: this.config.hostHeader === 'service' ? withHost(opts.headers, req.host) : opts.headers,
    };
  }

  #hash(opts: Dispatcher.DispatchOptions): number {
    const hashOn = this.config.hashOn;
    let key: string | undefined;
    if (hashOn === undefined) key = undefined;
    else if (typeof hashOn === 'function') {
      const view: HashRequest = {
        method: opts.method,
        path: opts.path,
        header: (name) => getHeader(opts.headers, name.toLowerCase()),
      };
      try {
        key = hashOn(view);
      } catch (err) {
        this.#deps.log.warn(`service ${this.name}: hashOn function threw, picking at random: ${(err as Error).message}`);
      }
    } else if ('header' in hashOn) key = getHeader(opts.headers, hashOn.header);
    else if ('cookie' in hashOn) key = cookieValue(getHeader(opts.headers, 'cookie'), hashOn.cookie);
    else key = queryValue(opts.path, hashOn.query);
    return key === undefined ? (this.#deps.random() * 0x1_0000_0000) >>> 0 : hash32(key);
  }

  // ===== lifecycle and stats =====

  /** Stop discovery, fail waiting requests, let in-flight ones finish, close every pool. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stop.abort();
    if (this.#readyTimer !== null) clearTimeout(this.#readyTimer);
    this.#flushWaiters();
    try {
      await this.#source?.stop();
    } catch (err) {
      this.#deps.log.warn(`service ${this.name}: stopping discovery failed: ${(err as Error).message}`);
    }
    const closing: Promise<void>[] = [];
    for (const ep of this.#endpoints.values()) {
      ep.state = 'closed';
      closing.push(ep.dispatcher.close());
    }
    for (const ep of this.#draining) closing.push(ep.dispatcher.close().catch(() => {}));
    this.#picker = null;
    await Promise.allSettled(closing);
  }

  /** Destroy every pool at once (in-flight requests fail). */
  async destroy(): Promise<void> {
    this.#closed = true;
    this.#stop.abort();
    if (this.#readyTimer !== null) clearTimeout(this.#readyTimer);
    this.#flushWaiters();
    await Promise.allSettled([
      Promise.resolve(this.#source?.stop()),
      ...[...this.#endpoints.values(), ...this.#draining].map((ep) => ep.dispatcher.destroy()),
    ]);
  }

  /** Current endpoints (active ones), for stats and tests. */
  endpoints(): Endpoint[] {
    return [...this.#endpoints.values()];
  }

  stats(): ServiceStats {
    const now = this.now();
    const eps: EndpointStats[] = [];
    let requests = 0;
    let failures = 0;
    let inFlight = 0;
    for (const ep of [...this.#endpoints.values(), ...this.#draining]) {
      requests += ep.requests;
      failures += ep.failures;
      inFlight += ep.inFlight;
      eps.push({
        url: ep.key,
        weight: ep.weight,
        zone: ep.zone,
        region: ep.region,
        labels: { ...ep.labels },
        state: ep.state === 'active' ? (ep.available ? 'healthy' : 'unavailable') : 'draining',
        inFlight: ep.inFlight,
        requests: ep.requests,
        failures: ep.failures,
        latencyEwmaMs: ep.latencyMs(now),
      });
    }
    return {
      balancer: this.config.balancerName,
      discovery: this.config.discoveryType,
      ready: this.#ready,
      requests,
      failures,
      inFlight,
      discoveryUpdates: this.#updates,
      discoveryErrors: this.#discoveryErrors,
      lastDiscoveryError: this.#lastDiscoveryError,
      endpoints: eps,
    };
  }
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function queryValue(path: string, name: string): string | undefined {
  const q = path.indexOf('?');
  if (q < 0) return undefined;
  return new URLSearchParams(path.slice(q + 1)).get(name) ?? undefined;
}

export type { MeshError };
