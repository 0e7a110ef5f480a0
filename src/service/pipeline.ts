/**
 * The request path of a service, top to bottom. Each line builds one layer (layers/, one file
 * each) — or leaves it out when the service does not configure it, so a request pays only for
 * what is on. Read this file to know what happens to a request, and in which order:
 *
 *   inbound     the caller's deadline and headers, while serving a request        (inbound/; always)
 *   route       the first matching route picks a subset, a service or a split     (routes)
 *   fault       delay or answer locally a share of a route's requests             (route.fault)
 *   mirror      copy a share of a route's requests to a subset, fire-and-forget   (route.mirror)
 *   forward     hand a request routed to another service over to it               (route.service)
 *   ─ ─ ─ ─     a request another service's route hands over enters here: its route's
 *               timeout, retry and hedge count as this service's own routes'
 *   hash        the request's hash key for ring-hash / maglev                     (hashOn)
 *   deadline    the whole request's time limit: route, subset or service          (timeoutMs)
 *   …           the user's interceptors (mesh-wide first, then the service's)     (interceptors)
 *   rate-limit  the service's token bucket: refuse, or wait for a token           (rateLimit)
 *   global      the limit shared by every process, in Redis                       (rateLimit.global)
 *   concurrency in-flight slots and a bounded queue, subset then service          (limits; always)
 *               — the service's slots learnt from latency                          (limits.adaptive)
 *   ready       wait for discovery's first answer                                 (always)
 *   breaker     the service's own circuit (opossum): retries inside one fire      (serviceBreaker)
 *   retry       hold back what will be retried, back off, go again from the next  (retry)
 *   hedge       past the hedge delay, a copy to another endpoint; first one wins  (hedge)
 *   pick        the target's picker, filtered by endpoint health, then an attempt on the pool
 *
 * Outcomes flow back the other way: each attempt reports to the service's observers (endpoint
 * health: outlier detection, error-rate breaker, probes, slow start) and to `call.sink` — the
 * retry layer's, when it wraps the call — before the caller's handler sees anything.
 */
import type { Endpoint } from '../core/endpoint.js';
import { MeshClosedError } from '../core/errors.js';
import type { MeshEvents } from '../core/events.js';
import type { Logger } from '../core/log.js';
import { mod64 } from '../balancers/xxhash64.js';
import type { Admission } from '../health/endpoint-health.js';
import type { Target } from '../routing/target.js';
import type { Call } from '../request/call.js';
import { compose, type Layer, type Next } from '../request/layer.js';
import { InboundContextLayer } from '../layers/inbound-context.js';
import { RouteLayer } from '../layers/route.js';
import { FaultLayer } from '../layers/fault.js';
import { MirrorLayer } from '../layers/mirror.js';
import { CrossServiceCounts, ForwardLayer, type Handoff } from '../layers/forward.js';
import type { ParsedRoute } from '../layers/route.js';
import { HashLayer, RequestHasher } from '../layers/hash.js';
import { DeadlineLayer } from '../layers/deadline.js';
import { EndpointRates, RateLimitLayer, RateLimitRefusals } from '../layers/rate-limit.js';
import { GlobalRateLimitLayer } from '../layers/global-rate-limit.js';
import { ConcurrencyLimit } from '../layers/concurrency-limit.js';
import { ConcurrencyLayer } from '../layers/concurrency.js';
import { AdaptiveLimit } from '../layers/adaptive-limit.js';
import { ReadyLayer } from '../layers/ready.js';
import { ServiceBreakerLayer } from '../layers/service-breaker.js';
import { RetryLayer, type RetryPolicies } from '../layers/retry.js';
import { HedgeLayer, type HedgePolicies } from '../layers/hedge.js';
import { pickAndSend } from '../layers/pick.js';
import type { ParsedService } from './config.js';

/** What a service hands its pipeline. */
export interface PipelineParts {
  readonly config: ParsedService;
  readonly whole: Target;
  /** Subset targets by name. */
  readonly subsets: ReadonlyMap<string, Target>;
  readonly random: () => number;
  readonly now: () => number;
  readonly log: Logger;
  readonly events: MeshEvents;
  /** The user's interceptors for this service, as layers, in order. */
  readonly interceptors: readonly Layer[];
  /** Routes of other services that send requests here; a handed-over call's `routeIndex` is past this service's own routes. */
  readonly imported: readonly ParsedRoute[];
  /** The other services of the mesh, for routes and mirrors that name them. */
  readonly handoff: Handoff;
  /** The health filter over picks. */
  readonly admit: (endpoint: Endpoint, target: Target) => Admission;
  /** An admitted pick that was not sent (its endpoint's rate limit refused it). */
  readonly unadmit: (endpoint: Endpoint) => void;
  readonly endpointCount: () => number;
  /** Discovery's last error, for requests that gave up waiting for it. */
  readonly lastDiscoveryError: () => string | undefined;
  /** True once the service was cut off at the end of close's grace. */
  readonly cut: () => boolean;
}

export interface Pipeline {
  /** Where a request enters. */
  readonly entry: Next;
  /** Where a request another service's route hands over enters: after the routes, faults and mirrors. */
  readonly routed: Next;
  /** Requests this service's routes sent to other services, and copies its mirrors sent them. */
  readonly routedTo: CrossServiceCounts;
  readonly mirroredTo: CrossServiceCounts;
  /** The layers, in order (for stats and close). */
  readonly layers: readonly Layer[];
  /** Told when discovery first answers. */
  readonly ready: ReadyLayer;
  /** Requests refused by any rate limit. */
  readonly refusals: RateLimitRefusals;
  /** The adaptive concurrency limit, fed by the service's observers; null when `limits.adaptive` is unset. */
  readonly adaptive: AdaptiveLimit | null;
}

export function buildPipeline(p: PipelineParts): Pipeline {
  const c = p.config;
  const name = c.name;
  const subsetOf = <T>(pick: (s: ParsedService['subsets'][number]) => T | undefined): Map<Target, T> => {
    const m = new Map<Target, T>();
    for (const s of c.subsets) {
      const v = pick(s);
      if (v !== undefined) m.set(p.subsets.get(s.name)!, v);
    }
    return m;
  };
  const hasher = new RequestHasher(name, p.random, p.log);
  const refusals = new RateLimitRefusals(name, p.events);
  const limit = new ConcurrencyLimit(c.limits, p.now);
  const ready = new ReadyLayer(name, c.readyTimeoutMs, p.lastDiscoveryError);
  const faults = c.routes.map((r) => ({ delay: r.delay, abort: r.abort }));
  const mirrors = c.routes.map((r) => r.mirrors);
  // Own routes first, then those of other services that hand requests over (by `routeIndex`).
  const routes = [...c.routes, ...p.imported];
  const timeouts = { bySubset: subsetOf((s) => s.timeoutMs), byRoute: routes.map((r) => r.timeoutMs) };
  const retries: RetryPolicies = { service: c.retry, bySubset: subsetOf((s) => s.retry), byRoute: routes.map((r) => r.retry) };
  const hedges: HedgePolicies = { service: c.hedge, byRoute: routes.map((r) => r.hedge) };
  const routedTo = new CrossServiceCounts();
  const mirroredTo = new CrossServiceCounts();
  const targets = [p.whole, ...p.subsets.values()];
  const deps = { service: name, events: p.events, random: p.random, now: p.now, log: p.log };
  const adaptive = c.limits.adaptive ? new AdaptiveLimit(c.limits.adaptive, limit, deps) : null;

  // The head routes a request; a request handed over by another service's route enters at the tail.
  const head: (Layer | null)[] = [
    new InboundContextLayer(name),
    c.routes.length > 0 ? new RouteLayer(c.routes, p.subsets, splitDraw(c, hasher, p.random)) : null,
    FaultLayer.needed(faults) ? new FaultLayer(faults, p.random) : null,
    MirrorLayer.needed(mirrors)
      ? new MirrorLayer(mirrors, p.whole, p.subsets, { handoff: p.handoff, counts: mirroredTo }, { serviceMs: c.timeoutMs, ...timeouts }, deps)
      : null,
    ForwardLayer.needed(c.routes) ? new ForwardLayer(p.handoff, routedTo) : null,
  ];
  const tail: (Layer | null)[] = [
    targets.some((t) => t.balancer.def.usesHash) ? new HashLayer(hasher) : null,
    DeadlineLayer.needed(c.timeoutMs, timeouts.bySubset, timeouts.byRoute) ? new DeadlineLayer(name, c.timeoutMs, timeouts.bySubset, timeouts.byRoute) : null,
    ...p.interceptors,
    c.rateLimit?.service ? new RateLimitLayer(c.rateLimit, p.now, refusals.refuse) : null,
    c.rateLimit?.global ? new GlobalRateLimitLayer(c.rateLimit.global, c.rateLimit, { ...deps, refuse: refusals.refuse, path: `services.${name}.rateLimit.global` }) : null,
    new ConcurrencyLayer(limit, subsetOf((s) => (s.limits ? new ConcurrencyLimit(s.limits, p.now) : undefined)), deps),
    ready,
    c.serviceBreaker ? new ServiceBreakerLayer(c.serviceBreaker, deps) : null,
    RetryLayer.needed(retries) ? new RetryLayer(retries, limit, deps) : null,
    HedgeLayer.needed(hedges) ? new HedgeLayer(hedges, deps) : null,
  ];
  const present = (l: Layer | null): l is Layer => l !== null;
  const after = tail.filter(present);
  const on = [...head.filter(present), ...after];
  const per = c.rateLimit?.perEndpoint;
  const terminal = pickAndSend({
    service: name,
    endpointCount: p.endpointCount,
    admit: p.admit,
    unadmit: p.unadmit,
    endpointRate: per ? new EndpointRates(per, p.now).take : null,
    rateLimited: refusals.refuse,
    retryRateLimited: refusals.note,
    cut: p.cut,
  });
  return { entry: compose(on, terminal, name), routed: compose(after, terminal, name), routedTo, mirroredTo, layers: on, ready, refusals, adaptive };
}

/** A draw in [0, 100) for a weighted split: from the request's hash when the service hashes (sticky), else random. */
function splitDraw(c: ParsedService, hasher: RequestHasher, random: () => number): (call: Call) => number {
  const b = c.balancer;
  if (!b.def.usesHash || b.hashOn === undefined) return () => random() * 100;
  return (call) => (hasher.compute(call, b.hashOn) ? mod64(hasher.out[0]!, hasher.out[1]!, 10_000) / 100 : random() * 100);
}

/**
 * Close a pipeline's layers: what waits in the ready and concurrency queues fails with MESH_CLOSED;
 * timed waits (a rate-limit wait, a fault delay, a retry's back-off) run on within close's grace.
 */
export function closePipeline(p: Pipeline): void {
  const closed = (): Error => new MeshClosedError();
  for (const layer of p.layers) layer.close?.(closed);
}
