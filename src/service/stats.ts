/** What `mesh.stats()` reports for a service and its endpoints, and how it is gathered. */
import type { Endpoint } from '../core/endpoint.js';
import { errorLabel } from '../core/errors.js';
import type { ReportedLoad } from '../load/endpoint-load.js';
import type { ServiceHealth } from '../health/endpoint-health.js';
import type { Layer, LayerStats } from '../request/layer.js';
import type { ParsedService } from './config.js';
import type { MeshEventMap } from '../core/events.js';
import type { Call } from '../request/call.js';

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
  /**
   * Attempts this endpoint finished (a retry or hedge sent here is one more), and of them the
   * failed ones. An endpoint that discovery removed and brought back while it was still draining
   * is listed twice until the old one has drained: the old one (`draining`, its counters) and the
   * new one, whose counters start at 0.
   */
  requests: number;
  failures: number;
  /** Peak-EWMA latency estimate in ms (0 before the first response). */
  latencyEwmaMs: number;
  /** Health as outlier detection, circuit breaker and health checks see it. */
  health: 'healthy' | 'ejected' | 'half-open' | 'unhealthy';
  /** Times this endpoint was ejected. */
  ejections: number;
  /**
   * The load the endpoint last reported about itself (ORCA), kept when a balancer of the service
   * reads reports; undefined before the first. `rif`: its own requests in flight (named metric `rif`).
   */
  reportedLoad: { utilization: number; qps: number; eps: number; rif: number | undefined; ageMs: number } | undefined;
  /** Invalid load reports received from it (ignored). */
  invalidLoadReports: number;
}

/** Snapshot of one service for `mesh.stats()`; the layers' counters are documented in LayerStats. */
export interface ServiceStats extends Omit<LayerStats, 'serviceCircuit' | 'concurrencyLimit'> {
  balancer: string;
  discovery: string;
  /** True once discovery has answered at least once. */
  ready: boolean;
  /**
   * Requests that ended in this service — one per `request` event, whatever their attempts
   * (retries are `retries`, hedges `hedges`) — since it was made: never less than before, as
   * endpoints come and go.
   */
  requests: number;
  /**
   * Of `requests`, those that ended with a 5xx status or an error (the event's `error`) — other
   * than your own abort and MESH_CLOSED (the mesh closing), which say nothing of the service.
   */
  failures: number;
  /** Attempts in flight at its endpoints. */
  inFlight: number;
  /** Endpoint-set updates applied. */
  discoveryUpdates: number;
  /** Discovery failures reported (the last good set was kept). */
  discoveryErrors: number;
  lastDiscoveryError: string | undefined;
  /** The service's own circuit (`serviceBreaker`), or undefined when it has none. */
  serviceCircuit: 'closed' | 'open' | 'half-open' | undefined;
  /** In-flight slots the service allows now: `limits.maxRequests`, or the adaptive limit (`limits.adaptive`) when lower. */
  concurrencyLimit: number;
  /** The layers on this service's request path, in order (see service/pipeline.ts). */
  pipeline: string[];
  /** Requests this service's routes handed over to other services of the mesh, by service name. */
  routedTo: Record<string, number>;
  /** Copies this service's mirrors sent to other services of the mesh, by service name. */
  mirroredTo: Record<string, number>;
  /** Requests and mirrored copies other services' routes sent here, by service name. */
  receivedFrom: Record<string, number>;
  endpoints: EndpointStats[];
}

export interface StatsSources {
  readonly config: ParsedService;
  readonly now: number;
  readonly ready: boolean;
  /** The service's own counts of requests that ended, and failed. */
  readonly calls: { readonly requests: number; readonly failures: number };
  readonly endpoints: readonly Endpoint[];
  readonly health: ServiceHealth;
  readonly layers: readonly Layer[];
  readonly rateLimited: number;
  readonly elsewhere: { readonly routedTo: Record<string, number>; readonly mirroredTo: Record<string, number>; readonly receivedFrom: Record<string, number> };
  readonly discovery: { readonly updates: number; readonly errors: number; readonly lastError: string | undefined };
}

export function serviceStats(s: StatsSources): ServiceStats {
  const eps: EndpointStats[] = [];
  let inFlight = 0;
  for (const ep of s.endpoints) {
    const load = ep.load;
    inFlight += load.inFlight;
    eps.push({
      url: ep.key,
      weight: ep.weight,
      zone: ep.zone,
      region: ep.region,
      labels: { ...ep.labels },
      state: ep.state === 'active' ? (ep.available ? 'healthy' : 'unavailable') : 'draining',
      inFlight: load.inFlight,
      requests: load.requests,
      failures: load.failures,
      latencyEwmaMs: load.latencyMs(s.now),
      reportedLoad: reported(load.reported, s.now),
      invalidLoadReports: load.invalidReports,
      ...s.health.stats(ep),
    });
  }
  const counters: Omit<LayerStats, 'serviceCircuit' | 'concurrencyLimit'> = { retries: 0, retryBudgetExhausted: 0, hedges: 0, hedgesWon: 0, hedgeBudgetExhausted: 0, rateLimited: 0, overloaded: 0, pending: 0, shortCircuited: 0 };
  let serviceCircuit: LayerStats['serviceCircuit'] | undefined;
  let concurrencyLimit = s.config.limits.maxRequests;
  for (const layer of s.layers) {
    const st = layer.stats?.();
    if (!st) continue;
    for (const k of Object.keys(st) as (keyof LayerStats)[]) {
      if (k === 'serviceCircuit') serviceCircuit = st[k];
      else if (k === 'concurrencyLimit') concurrencyLimit = st[k]!;
      else counters[k] += st[k] ?? 0;
    }
  }
  return {
    balancer: s.config.balancer.name,
    discovery: s.config.discoveryType,
    ready: s.ready,
    requests: s.calls.requests,
    failures: s.calls.failures,
    inFlight,
    discoveryUpdates: s.discovery.updates,
    discoveryErrors: s.discovery.errors,
    lastDiscoveryError: s.discovery.lastError,
    retries: counters.retries,
    retryBudgetExhausted: counters.retryBudgetExhausted,
    hedges: counters.hedges,
    hedgesWon: counters.hedgesWon,
    hedgeBudgetExhausted: counters.hedgeBudgetExhausted,
    rateLimited: s.rateLimited,
    overloaded: counters.overloaded,
    pending: counters.pending,
    shortCircuited: counters.shortCircuited,
    serviceCircuit,
    concurrencyLimit,
    pipeline: s.layers.map((l) => l.name),
    ...s.elsewhere,
    endpoints: eps,
  };
}

function reported(r: ReportedLoad | null, now: number): EndpointStats['reportedLoad'] {
  if (r === null) return undefined;
  return { utilization: r.utilization, qps: r.qps, eps: r.eps, rif: Number.isNaN(r.rif) ? undefined : r.rif, ageMs: now - r.atMs };
}

/**
 * Whether a settled call counts in its service's `failures`: a 5xx, or an error that is neither
 * the caller's own abort nor MESH_CLOSED (but a 5xx the caller cut short counts). A success costs three comparisons.
 */
export function callFailed(call: Call): boolean {
  const error = call.error;
  if (call.aborted && !call.timedOut && error === call.reason) {
    // The caller's own abort (its reason as given, even undefined) is no failure — unless the
    // response it cut short already was one (a 503 whose body it stopped reading), as the
    // endpoint's books count it (attempt.ts).
    return call.status >= 500 && call.status <= 599;
  }
  if (error === undefined) return call.status >= 500 && call.status <= 599;
  return (error as { code?: unknown }).code !== 'MESH_CLOSED';
}

/** The `request` event of a call that settled in `service`, at `nowMs`. */
export function requestEvent(call: Call, service: string, nowMs: number): MeshEventMap['request'] {
  return {
    service,
    endpoint: call.endpoint,
    subset: call.target.subset ?? undefined,
    via: call.via ?? undefined,
    method: call.opts.method,
    status: call.status,
    // errorLabel: your own AbortSignal.timeout's reason is a DOMException whose `code` is the number 23.
    // A caller that drops the body (body.destroy()) aborts with no reason: told as 'aborted'.
    error: call.error !== undefined ? errorLabel(call.error) : call.aborted ? 'aborted' : undefined,
    attempts: call.attempt + 1,
    durationMs: nowMs - call.startMs,
  };
}
