/**
 * A Service is one logical upstream: its endpoints (diffed from discovery snapshots), the picker
 * built for them, and the request path that picks an endpoint and sends an attempt.
 *
 * Everything that can be computed when endpoints change is computed then (`#rebuild`): the picker,
 * the list of endpoints that may take traffic. A request reads the current picker and the live
 * numbers on endpoints, nothing more.
 *
 * Why this file is longer than 400 lines: it is the one place where a request's steps meet —
 * routing, admission (rate limits, concurrency), waiting for discovery, picking with health
 * admission, retries' budget — each implemented in its own module (routing/, resilience/) and only
 * sequenced here. Splitting the sequence would scatter the request path across files.
 */
import { randomUUID } from 'node:crypto';
import { Pool, type Dispatcher } from 'undici';
import type { BalancerDeps, PickFailed } from '../balancers/balancer.js';
import type { ParsedService } from './config.js';
import type { DiscoveryContext, DiscoverySource } from '../discovery/discovery.js';
import type { Logger } from '../core/log.js';
import { Endpoint } from '../core/endpoint.js';
import { overTls, type EndpointSpec } from '../core/endpoint-spec.js';
import { TlsMaterial } from '../security/tls.js';
import { DEFAULT_DECAY_MS } from '../balancers/peak-ewma.js';
import { CircuitOpenError, MeshClosedError, MeshError, NoHealthyEndpointError, OverloadedError, RateLimitedError } from '../core/errors.js';
import { withHost } from '../core/headers.js';
import { hashKeyOf, requestHash } from '../balancers/hash-key.js';
import { Target } from '../routing/target.js';
import { destinationOf, matchRoute, type ParsedRoute } from '../layers/route.js';
import { sendMirror, type MirrorSet } from '../layers/mirror.js';
import type { Locality } from '../routing/locality.js';
import type { ParsedRetry } from '../layers/retry-policy.js';
import { MeshRequest } from '../request/call.js';
import type { MeshEvents } from '../core/events.js';
import { ServiceHealth } from '../health/endpoint-health.js';
import { ConcurrencyLimit } from '../layers/concurrency-limit.js';
import { RetryBudget } from '../layers/retry-budget.js';
import { TokenBucket } from '../layers/rate-limit.js';
import { GlobalRateLimiter } from '../layers/global-rate-limit.js';
import type { AttemptOutcomeKind } from '../health/outcome.js';

/** Injected dependencies of a service. */
export interface ServiceDeps {
  readonly random: () => number;
  readonly now: () => number;
  readonly log: Logger;
  readonly events: MeshEvents;
  /** Where this process runs (for locality-aware balancing). */
  readonly locality: Locality;
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
  /** Health as outlier detection, circuit breaker and health checks see it. */
  health: 'healthy' | 'ejected' | 'half-open' | 'unhealthy';
  /** Times this endpoint was ejected. */
  ejections: number;
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
  /** Retries sent. */
  retries: number;
  /** Retries refused because the retry budget was spent. */
  retryBudgetExhausted: number;
  /** Requests refused by the rate limit. */
  rateLimited: number;
  /** Requests refused by the concurrency limits. */
  overloaded: number;
  /** Requests waiting for a concurrency slot now. */
  pending: number;
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
  /** The whole service, then one target per subset. */
  readonly #whole: Target;
  readonly #targets = new Map<string, Target>();
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
  readonly #health: ServiceHealth;
  readonly #limit: ConcurrencyLimit;
  readonly #budget: RetryBudget | null;
  readonly #rate: TokenBucket | null;
  readonly #endpointRates = new WeakMap<Endpoint, TokenBucket>();
  #retries = 0;
  #rateLimited = 0;
  #global: Promise<GlobalRateLimiter | null> | null = null;
  readonly #mirrors: MirrorSet = new Set();
  readonly #tls: TlsMaterial | null;
  /** Time constant of each endpoint's latency EWMA: peak-ewma's `decayMs`, else its default. */
  readonly #decayMs: number;
  /** Runs once when a request that holds a service slot ends: give back its slots. */
  readonly #finished = (req: MeshRequest): void => {
    this.#limit.release();
    if (req.holdsSubsetSlot) req.target.limit!.release();
  };

  constructor(config: ParsedService, deps: ServiceDeps) {
    this.name = config.name;
    this.config = config;
    this.#deps = deps;
    this.now = deps.now;
    this.#health = new ServiceHealth(config.health, {
      service: config.name,
      changed: () => this.refresh(),
      now: deps.now,
      random: deps.random,
      log: deps.log,
      events: deps.events,
    });
    this.#limit = new ConcurrencyLimit(config.limits, deps.now);
    this.#budget = config.retry?.budget ? new RetryBudget(config.retry.budget, deps.now) : null;
    this.#rate = config.rateLimit?.service ? new TokenBucket(config.rateLimit.service, deps.now()) : null;
    this.#tls = config.tls
      ? new TlsMaterial(config.tls, { log: deps.log, connectTimeoutMs: config.pool.connectTimeoutMs, defaultServername: config.hosts[0] ?? config.name })
      : null;
    const decay = (config.balancer.options as { decayMs?: unknown } | null)?.decayMs;
    this.#decayMs = typeof decay === 'number' ? decay : DEFAULT_DECAY_MS;
    this.#whole = new Target(config, null);
    for (const subset of config.subsets) this.#targets.set(subset.name, new Target(config, subset, deps.now));
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
    for (const raw of specs) {
      const spec = this.#tls !== null ? overTls(raw) : raw;
      if (next.has(spec.origin)) this.#deps.log.debug(`service ${this.name}: duplicate endpoint ${spec.origin} ignored`);
      else next.set(spec.origin, spec);
    }
    let changed = !this.#ready;
    let added = 0;
    let removed = 0;
    for (const [key, ep] of this.#endpoints) {
      if (!next.has(key)) {
        this.#endpoints.delete(key);
        this.#health.remove(ep);
        this.#drain(ep);
        removed++;
        changed = true;
      }
    }
    for (const [key, spec] of next) {
      const ep = this.#endpoints.get(key);
      if (ep) {
        if (ep.update(spec)) changed = true;
      } else {
        const created = this.#createEndpoint(spec);
        this.#endpoints.set(key, created);
        this.#health.add(created, this.#ready);
        added++;
        changed = true;
      }
    }
    this.#updates++;
    this.#deps.events.emit('discovery-update', { service: this.name, endpoints: this.#endpoints.size, added, removed });
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
    this.#deps.events.emit('discovery-error', { service: this.name, message: err.message });
    this.#deps.log.warn(`service ${this.name}: discovery failed, keeping ${this.#endpoints.size} known endpoints: ${err.message}`);
  }

  #createEndpoint(spec: EndpointSpec): Endpoint {
    const p = this.config.pool;
    const makePool = (): Pool => new Pool(spec.origin, {
      connections: p.connections,
      pipelining: p.pipelining,
      keepAliveTimeout: p.keepAliveTimeoutMs,
      headersTimeout: p.headersTimeoutMs,
      bodyTimeout: p.bodyTimeoutMs,
      maxHeaderSize: p.maxHeaderSizeBytes,
      maxResponseSize: p.maxResponseSizeBytes,
      ...(this.#tls !== null ? { connect: this.#tls.connect } : { connectTimeout: p.connectTimeoutMs }),
    });
    return new Endpoint(spec, makePool, { decayMs: this.#decayMs }, this.#load);
  }

  /** A removed endpoint takes no new requests, finishes its in-flight ones, then its pool closes. */
  #drain(ep: Endpoint): void {
    ep.state = 'draining';
    this.#draining.add(ep);
    ep.close().then(
      () => {
        ep.state = 'closed';
        this.#draining.delete(ep);
      },
      (err: Error) => this.#deps.log.warn(`service ${this.name}: closing ${ep.key} failed: ${err.message}`),
    );
  }

  /** Rebuild every target's picker (see routing/target.ts for how tiers and panic work). */
  #rebuild(): void {
    const all = [...this.#endpoints.values()];
    const eligible = (candidates: readonly Endpoint[]): readonly Endpoint[] => this.#health.eligible(candidates);
    this.#whole.rebuild(all, this.config, this.#deps.locality, eligible, this.#balancerDeps);
    for (const t of this.#targets.values()) t.rebuild(all, this.config, this.#deps.locality, eligible, this.#balancerDeps);
  }

  /** Re-run the balancer factory (availability of an endpoint changed). */
  refresh(): void {
    if (!this.#closed) this.#rebuild();
  }

  // ===== requests =====

  dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler, host: string): void {
    this.#generated = undefined;
    // Routing: the first matching route picks the target (a subset, or a weighted split).
    let target = this.#whole;
    let route: ParsedRoute | undefined;
    if (this.config.routes.length > 0) {
      route = matchRoute(this.config.routes, opts);
      if (route !== undefined) {
        const subset = route.destinations.length === 1 ? route.destinations[0]!.subset : destinationOf(route, this.#splitDraw(opts));
        if (subset !== null) target = this.#targets.get(subset)!;
      }
    }
    const retry: ParsedRetry | null = route?.retry !== undefined ? route.retry : target.retry;
    const req = new MeshRequest(this, opts, handler, host, target, retry);
    if (this.#closed) {
      req.fail(new MeshClosedError());
      return;
    }
    if (!req.start(route?.timeoutMs ?? target.timeoutMs, this.#noRelease)) return;
    if (target.balancer.def.usesHash) req.hash = this.#hash(opts, target);
    if (this.#generated !== undefined) req.setCookie = this.#generated;
    if (route !== undefined && (route.abort !== null || route.delay !== null || route.mirror !== null)) {
      if (this.#routeExtras(req, route, host)) return;
    }
    this.#rateAdmit(req);
  }

  /** A draw in [0, 100) for a weighted split: from the request's hash when the service hashes (sticky), else random. */
  #splitDraw(opts: Dispatcher.DispatchOptions): number {
    const b = this.config.balancer;
    if (b.def.usesHash && b.hashOn !== undefined) {
      const key = this.#hashKey(opts, b.hashOn);
      if (key !== undefined) return (requestHash(key, this.#deps.random) % 10_000) / 100;
    }
    return this.#deps.random() * 100;
  }

  /** Fault injection and mirroring of a route. Returns true when the request was answered locally or deferred. */
  #routeExtras(req: MeshRequest, route: ParsedRoute, host: string): boolean {
    const random = this.#deps.random;
    if (route.mirror !== null && random() * 100 < route.mirror.percent) {
      const mirrorTarget = route.mirror.subset === null ? this.#whole : this.#targets.get(route.mirror.subset)!;
      if (!sendMirror(mirrorTarget.picker, req.opts, host, this.#mirrors)) this.#deps.log.debug(`service ${this.name}: request not mirrored (streamed body or no endpoint)`);
    }
    if (route.abort !== null && random() * 100 < route.abort.percent) {
      req.respondLocally(route.abort.status);
      return true;
    }
    if (route.delay !== null && random() * 100 < route.delay.percent) {
      const t = setTimeout(() => {
        if (!req.done) this.#rateAdmit(req);
      }, route.delay.ms);
      t.unref?.();
      return true;
    }
    return false;
  }

  #rateAdmit(req: MeshRequest): void {
    // Admission: rate limits first (a refused request holds nothing), then a concurrency slot.
    const rate = this.#rate;
    if (rate !== null) {
      const rl = this.config.rateLimit!;
      const wait = rl.mode === 'wait' ? rate.reserve(this.now(), rl.maxWaitMs) : rate.tryTake(this.now()) ? 0 : -1;
      if (wait < 0) {
        this.#refuseRate(req, 'service');
        return;
      }
      if (wait > 0) {
        const t = setTimeout(() => this.#afterLocalRate(req), wait);
        t.unref?.();
        return;
      }
    }
    this.#afterLocalRate(req);
  }

  #refuseRate(req: MeshRequest, scope: string): void {
    this.#rateLimited++;
    this.#deps.events.emit('rate-limited', { service: this.name, scope });
    req.fail(new RateLimitedError(this.name, scope));
  }

  #afterLocalRate(req: MeshRequest): void {
    if (this.config.rateLimit?.global) void this.#globalRate(req, this.now());
    else this.#admit(req);
  }

  /** The shared (Redis) limit: asynchronous, and only when configured. */
  async #globalRate(req: MeshRequest, startedMs: number): Promise<void> {
    const rl = this.config.rateLimit!;
    this.#global ??= GlobalRateLimiter.create(rl.global!, this.name).catch((err: Error) => {
      this.#deps.log.warn(`service ${this.name}: global rate limit disabled: ${err.message}`);
      return null;
    });
    const limiter = await this.#global;
    for (;;) {
      if (req.done) return;
      if (limiter === null) break;
      const verdict = await limiter.consume();
      if (verdict.ok) break;
      const waited = this.now() - startedMs;
      if (rl.mode !== 'wait' || waited + verdict.retryInMs > rl.maxWaitMs) {
        this.#refuseRate(req, 'global');
        return;
      }
      await new Promise((r) => setTimeout(r, Math.max(1, verdict.retryInMs)).unref?.());
    }
    this.#admit(req);
  }

  readonly #noRelease = (): void => {};

  #admit(req: MeshRequest): void {
    if (req.done) return;
    if (this.#closed) {
      req.fail(new MeshClosedError());
      return;
    }
    const verdict = this.#limit.acquire(req);
    if (verdict === 'overloaded') {
      this.#deps.events.emit('overloaded', { service: this.name, limit: 'maxPendingRequests' });
      req.fail(new OverloadedError(this.name, `${this.config.limits.maxRequests} requests in flight and ${this.#limit.pending} waiting`));
      return;
    }
    if (verdict === 'admitted') this.go(req);
  }

  /** A queued request waited too long for a concurrency slot. */
  queueExpired(req: MeshRequest): void {
    req.fail(new OverloadedError(this.name, `waited ${this.config.limits.maxQueueTimeMs} ms for one of ${this.config.limits.maxRequests} request slots`));
  }

  /** The request holds a slot: release it when it ends, then send it (or wait for discovery). */
  go(req: MeshRequest): void {
    if (req.waitingForSubset) {
      // A slot of the subset's own limit came free (see below).
      req.waitingForSubset = false;
      if (req.done) {
        req.target.limit!.release();
        return;
      }
      req.holdsSubsetSlot = true;
    } else {
      if (req.done) {
        this.#limit.release();
        return;
      }
      req.onFinish(this.#finished);
      // A subset may have concurrency limits of its own (as a DestinationRule subset's connectionPool).
      const subsetLimit = req.target.limit;
      if (subsetLimit !== null) {
        const verdict = subsetLimit.acquire(req);
        if (verdict === 'overloaded') {
          this.#deps.events.emit('overloaded', { service: this.name, limit: `subset ${req.target.subset}` });
          req.fail(new OverloadedError(this.name, `subset "${req.target.subset}" is at its limits`));
          return;
        }
        if (verdict === 'queued') {
          req.waitingForSubset = true;
          return;
        }
        req.holdsSubsetSlot = true;
      }
    }
    this.#budget?.onRequest();
    if (this.#ready) this.sendAttempt(req);
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
      else if (this.#ready) this.sendAttempt(req);
      else req.fail(new NoHealthyEndpointError(this.name, 'discovery has not answered yet'));
    }
  }

  /**
   * Pick an endpoint for the request's current attempt and send it. An endpoint the health model
   * does not admit now (a half-open circuit already probing, slow start shedding) or whose own
   * rate limit is empty is excluded and the pick repeats; a retry with no untried endpoint left
   * may go back to one already tried.
   */
  sendAttempt(req: MeshRequest): void {
    const picker = req.target.picker;
    if (picker === null) {
      if (this.#endpoints.size > 0 && req.target.size > 0) {
        // Endpoints exist but none may take traffic (ejected, unhealthy; panic off).
        req.fail(new CircuitOpenError(this.name));
        return;
      }
      const why = this.#endpoints.size === 0 ? 'discovery reports no endpoints' : `subset "${req.target.subset}" has no endpoint`;
      req.fail(new NoHealthyEndpointError(this.name, why));
      return;
    }
    let refusedByHealth = 0;
    let refusedByRate = 0;
    for (let guard = 0; guard <= this.#endpoints.size + 1; guard++) {
      const result = picker.pick(req);
      if (result.type !== 'pick') {
        if (req.attempt > 0 && refusedByHealth + refusedByRate === 0 && guard === 0) {
          req.resetExcluded();
          continue;
        }
        if (refusedByRate > 0 && refusedByHealth === 0) {
          this.#rateLimited++;
          this.#deps.events.emit('rate-limited', { service: this.name, scope: 'endpoint' });
          req.fail(new RateLimitedError(this.name, 'every endpoint'));
        } else if (refusedByHealth > 0) req.fail(new CircuitOpenError(this.name));
        else req.fail(result.error);
        return;
      }
      const ep = result.endpoint;
      if (!this.#health.admit(ep)) {
        refusedByHealth++;
        req.exclude(ep);
        continue;
      }
      if (!this.#endpointRateOk(ep)) {
        refusedByRate++;
        req.exclude(ep);
        continue;
      }
      req.send(ep);
      return;
    }
    req.fail(new NoHealthyEndpointError(this.name, 'no endpoint could be picked'));
  }

  #endpointRateOk(ep: Endpoint): boolean {
    const per = this.config.rateLimit?.perEndpoint;
    if (!per) return true;
    let bucket = this.#endpointRates.get(ep);
    if (!bucket) this.#endpointRates.set(ep, (bucket = new TokenBucket(per, this.now())));
    return bucket.tryTake(this.now());
  }

  /** A retry wants to start: ask the concurrency limit and the budget. */
  takeRetry(endpoint: Endpoint, reason: string): 'ok' | 'budget' | 'limit' {
    if (!this.#limit.tryRetry()) {
      this.#deps.events.emit('overloaded', { service: this.name, limit: 'maxRetries' });
      return 'limit';
    }
    if (this.#budget !== null && !this.#budget.tryRetry()) {
      this.#limit.retryEnded();
      this.#deps.events.emit('retry-budget-exhausted', { service: this.name, endpoint: endpoint.key, reason });
      return 'budget';
    }
    this.#retries++;
    return 'ok';
  }

  retryEnded(): void {
    this.#limit.retryEnded();
  }

  emitRetry(req: MeshRequest, attempt: number, delayMs: number, reason: string): void {
    void req;
    this.#deps.events.emit('retry', { service: this.name, endpoint: '', attempt, delayMs, reason });
  }

  /** A request ended: publish it when anyone listens (metrics, tracing). */
  requestEnded(req: MeshRequest, endpoint: string | undefined, status: number, error: string | undefined, startMs: number): void {
    const events = this.#deps.events;
    if (!events.wants('request')) return;
    const durationMs = this.now() - startMs;
    events.emit('request', {
      service: this.name,
      endpoint,
      subset: req.target.subset ?? undefined,
      method: req.opts.method,
      status,
      error,
      attempts: req.attempt + 1,
      durationMs,
    });
  }

  /** Scratch outcome handed to the health model: records are synchronous, so one object serves all. */
  readonly #outcome: { kind: AttemptOutcomeKind; status: number; latencyMs: number } = { kind: 'success', status: 0, latencyMs: 0 };

  /** Feed an attempt's outcome to the health model (without allocating). */
  recordOutcome(endpoint: Endpoint, kind: AttemptOutcomeKind, status: number, latencyMs: number): void {
    const o = this.#outcome;
    o.kind = kind;
    o.status = status;
    o.latencyMs = latencyMs;
    this.#health.record(endpoint, o);
  }

  get random(): () => number {
    return this.#deps.random;
  }

  /** Dispatch options for one attempt at `endpoint`. */
  endpointOptions(req: MeshRequest, endpoint: Endpoint): Dispatcher.DispatchOptions {
    const opts = req.opts;
    return {
      ...opts,
      origin: endpoint.key,
      body: req.body as Dispatcher.DispatchOptions['body'],
      headers: this.config.hostHeader === 'service' ? withHost(opts.headers, req.host) : opts.headers,
    };
  }

  #hash(opts: Dispatcher.DispatchOptions, target: Target): number {
    return requestHash(this.#hashKey(opts, target.balancer.hashOn), this.#deps.random);
  }

  /** `Set-Cookie` for a hash cookie generated for the request being dispatched (dispatch is synchronous). */
  #generated: string | undefined;
  #generatedValue: string | undefined;

  #hashKey(opts: Dispatcher.DispatchOptions, hashOn: Target['balancer']['hashOn']): string | undefined {
    let key: string | undefined;
    try {
      key = hashKeyOf(opts, hashOn);
    } catch (err) {
      this.#deps.log.warn(`service ${this.name}: hashOn function threw, picking at random: ${(err as Error).message}`);
      return undefined;
    }
    if (key === undefined && hashOn !== undefined && typeof hashOn !== 'function' && 'cookie' in hashOn && hashOn.ttlMs !== undefined) {
      // No cookie yet: make one (once per request, shared by the split and the pick) and set it on the response.
      if (this.#generated === undefined) {
        this.#generatedValue = randomUUID();
        this.#generated = `${hashOn.cookie}=${this.#generatedValue}; Path=${hashOn.path ?? '/'}; Max-Age=${Math.floor(hashOn.ttlMs / 1000)}; HttpOnly`;
      }
      key = this.#generatedValue;
    }
    return key;
  }

  // ===== lifecycle and stats =====

  /** Stop discovery, fail waiting requests, let in-flight ones finish, close every pool. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stop.abort();
    if (this.#readyTimer !== null) clearTimeout(this.#readyTimer);
    this.#flushWaiters();
    this.#health.close();
    this.#limit.drain((w) => (w as MeshRequest).fail(new MeshClosedError()));
    for (const t of this.#targets.values()) t.limit?.drain((w) => (w as MeshRequest).fail(new MeshClosedError()));
    for (const m of [...this.#mirrors]) m.cancel();
    this.#tls?.close();
    void this.#global?.then((g) => g?.close());
    try {
      await this.#source?.stop();
    } catch (err) {
      this.#deps.log.warn(`service ${this.name}: stopping discovery failed: ${(err as Error).message}`);
    }
    const closing: Promise<void>[] = [];
    for (const ep of this.#endpoints.values()) {
      ep.state = 'closed';
      closing.push(ep.close());
    }
    for (const ep of this.#draining) closing.push(ep.close().catch(() => {}));
    await Promise.allSettled(closing);
  }

  /** Destroy every pool at once (in-flight requests fail). */
  async destroy(): Promise<void> {
    this.#closed = true;
    this.#tls?.close();
    this.#stop.abort();
    if (this.#readyTimer !== null) clearTimeout(this.#readyTimer);
    this.#flushWaiters();
    this.#health.close();
    this.#limit.drain((w) => (w as MeshRequest).fail(new MeshClosedError()));
    for (const t of this.#targets.values()) t.limit?.drain((w) => (w as MeshRequest).fail(new MeshClosedError()));
    await Promise.allSettled([
      Promise.resolve(this.#source?.stop()),
      ...[...this.#endpoints.values(), ...this.#draining].map((ep) => ep.destroy()),
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
        ...this.#health.stats(ep),
      });
    }
    return {
      balancer: this.config.balancer.name,
      discovery: this.config.discoveryType,
      ready: this.#ready,
      requests,
      failures,
      inFlight,
      discoveryUpdates: this.#updates,
      discoveryErrors: this.#discoveryErrors,
      lastDiscoveryError: this.#lastDiscoveryError,
      retries: this.#retries,
      retryBudgetExhausted: this.#budget?.exhausted ?? 0,
      rateLimited: this.#rateLimited,
      overloaded: this.#limit.overloaded + [...this.#targets.values()].reduce((n, t) => n + (t.limit?.overloaded ?? 0), 0),
      pending: this.#limit.pending,
      endpoints: eps,
    };
  }
}

export type { MeshError };
