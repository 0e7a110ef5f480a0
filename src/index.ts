import './node-check.js'; // first: fails on an unsupported Node.js before undici loads
/**
 * meshlet — an in-process service mesh for Node.js. Public API only.
 */
export { createMesh, registerBalancer, registerDiscovery, Mesh, type MeshStats } from './mesh.js';
export type {
  MeshConfig,
  ServiceConfig,
  BalancerConfig,
  DiscoveryConfig,
  PoolConfig,
  HashOn,
  HashRequest,
} from './config/mesh-config.js';
export { MeshDispatcher } from './core/dispatcher.js';
export type { Endpoint, EndpointState, PickedEndpoint } from './core/endpoint.js';
export type { EndpointInput, EndpointSpec } from './core/endpoint-spec.js';
export { parseEndpointSpec } from './core/endpoint-spec.js';
export type { ServiceStats, EndpointStats } from './core/service.js';
export type {
  Picker,
  PickContext,
  PickResult,
  PickFailed,
  BalancerDeps,
  BalancerFactory,
  BalancerDefinition,
} from './balancers/balancer.js';
export { hash32 } from './balancers/hash.js';
export type {
  DiscoveryContext,
  DiscoverySource,
  DiscoveryFactory,
  DiscoveryDefinition,
} from './discovery/discovery.js';
export type { Logger } from './observability/log.js';
export type { MeshEventMap, MeshEventName, Disposable } from './observability/events.js';
export { enableMetrics, type MetricsOptions } from './observability/metrics.js';
export { liveView, type LiveViewOptions } from './observability/live-view.js';
export type { RetryConfig, RetryOn } from './resilience/retry-policy.js';
export type { BudgetConfig } from './resilience/retry-budget.js';
export type { OutlierDetectionConfig, CircuitBreakerConfig, HealthCheckConfig, SlowStartConfig } from './resilience/health-config.js';
export type { LimitsConfig } from './resilience/concurrency-limit.js';
export type { RateLimitConfig } from './resilience/rate-limit.js';
export type { GlobalRateLimitConfig } from './resilience/global-rate-limit.js';
export type { SubsetConfig, RouteConfig, FaultConfig } from './routing/routes.js';
export type { RouteMatch, StringMatch } from './routing/match.js';
export type { Locality, LocalityLbConfig } from './routing/locality.js';
export { TlsIdentityMismatchError, type TlsConfig } from './security/tls.js';
export { fromIstio, type FromIstioOptions, type FromIstioResult } from './routing/istio.js';
export {
  MeshError,
  isMeshError,
  UnknownServiceError,
  NoHealthyEndpointError,
  InvalidConfigError,
  TimeoutError,
  MeshClosedError,
  OverloadedError,
  RateLimitedError,
  CircuitOpenError,
  RetryBudgetExhaustedError,
  PerTryTimeoutError,
  type MeshErrorCode,
  type MeshErrorDetails,
} from './core/errors.js';
