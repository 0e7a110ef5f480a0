/**
 * Istio's defaults where meshlet's own differ: what a sidecar does with a service its
 * DestinationRule and VirtualService leave unsaid (pilot/pkg/networking/core/cluster_traffic_policy.go,
 * .../route/retry/retry.go). Applied to every service fromIstio returns, to the fields its
 * documents left unset; the README lists each difference ("From Istio").
 */
import type { SubsetConfig } from '../layers/route.js';
import type { LimitsConfig } from '../layers/concurrency-limit.js';
import type { RetryConfig } from '../layers/retry-policy.js';
import type { BalancerConfig, ServiceConfig } from '../service/config.js';

/** meshlet's largest concurrency limit: Istio's 2^32 − 1, "effectively unlimited". */
export const UNLIMITED = 10_000_000;
/** meshlet's largest connection pool per endpoint: Istio's unlimited connections. */
export const MAX_CONNECTIONS = 65_536;
/** meshlet's longest wait for a concurrency slot: Envoy's pending requests have no time limit of their own. */
const MAX_QUEUE_MS = 600_000;

/**
 * Istio's retry policy for a route without `retries`: 2 retries on
 * `connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes` with no status codes
 * (503 left the default in Istio 1.24). meshlet talks HTTP/1.1 to endpoints, where no stream is
 * refused and no gRPC status arrives: of these, connect failures are what can happen. No retry
 * budget: Istio sets none unless the DestinationRule has `retryBudget`.
 */
export function istioRetry(): RetryConfig {
  return { attempts: 2, retryOn: ['connect-failure'], budget: false };
}

/** Envoy's circuit-breaker thresholds as Istio sets them: effectively none. */
export function istioLimits(given: LimitsConfig | undefined): LimitsConfig {
  return { maxRequests: UNLIMITED, maxPendingRequests: UNLIMITED, maxQueueTimeMs: MAX_QUEUE_MS, ...given };
}

/** `svc` with Istio's defaults in the fields its documents left unset. */
export function withIstioDefaults(svc: ServiceConfig): ServiceConfig {
  const outlier = svc.outlierDetection !== undefined && svc.outlierDetection !== false;
  const out: ServiceConfig = {
    ...svc,
    balancer: svc.balancer ?? ('least-request' satisfies BalancerConfig),
    // A DestinationRule's retryBudget is the only retry setting a service gets from the documents.
    retry: svc.retry === false ? false : { ...istioRetry(), ...svc.retry },
    outlierDetection: svc.outlierDetection ?? false,
    circuitBreaker: false, // Istio has no error-rate breaker
    limits: istioLimits(svc.limits),
    pool: { connections: MAX_CONNECTIONS, connectTimeoutMs: 10_000, headersTimeoutMs: 300_000, ...svc.pool },
  };
  // minHealthPercent, 0 unless given, is the panic threshold only with outlier detection.
  if (outlier) out.panicThreshold = svc.panicThreshold ?? 0;
  else delete out.panicThreshold;
  // Locality failover only with outlier detection (Envoy could not see a locality fail);
  // `distribute` applies either way; `enabled: false` turns both off.
  const l = svc.localityLb;
  if (l?.enabled !== false && l?.distribute === undefined && !outlier) out.localityLb = { enabled: false };
  if (svc.subsets !== undefined) out.subsets = subsetsWithDefaults(svc.subsets);
  return out;
}

/** A subset with its own connectionPool has Istio's unlimited thresholds in what it leaves unset. */
function subsetsWithDefaults(subsets: Record<string, SubsetConfig<BalancerConfig>>): Record<string, SubsetConfig<BalancerConfig>> {
  const out: Record<string, SubsetConfig<BalancerConfig>> = {};
  for (const [name, s] of Object.entries(subsets)) {
    Object.defineProperty(out, name, { value: s.limits ? { ...s, limits: istioLimits(s.limits) } : s, enumerable: true, writable: true, configurable: true });
  }
  return out;
}
