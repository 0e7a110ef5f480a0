import './node-check.js'; // first: fails on an unsupported Node.js before undici loads
/**
 * meshlet — an in-process service mesh for Node.js. Public API only.
 */
export { createMesh, Mesh, type MeshStats } from './mesh.js';
export { registerBalancer, registerDiscovery } from './service/registrations.js';
export type {
  MeshConfig,
  IstioMeshConfig,
  IstioLiveConfig,
  ServiceConfig,
  BalancerConfig,
  DiscoveryConfig,
  PoolConfig,
  PassthroughList,
  HashOn,
  HashRequest,
} from './service/config.js';
export { MeshDispatcher } from './core/dispatcher.js';
export { MeshAgent } from './agent/agent.js';
export { inboundRequest, type InboundRequest, type InboundStats } from './inbound/inbound.js';
export type { InboundOptions, InboundLimitsConfig, InboundRateLimitConfig } from './inbound/options.js';
export type { InboundEntryStats } from './inbound/door.js';
export type { LoadReportOptions } from './inbound/load-report.js';
export type { RequestListener, Middleware, FastifyPlugin, FastifyLike, FastifyReplyLike } from './inbound/adapters.js';
export type { ProbeOptions, ProbeHandler } from './inbound/probes.js';
export type { DrainOptions, SignalOptions, DrainableServer } from './inbound/drain.js';
export type { MeshCall, EndListener } from './request/call.js';
export type { Interceptor, InterceptorFactory, LayerContext } from './request/layer.js';
export type { Endpoint, EndpointState, PickedEndpoint } from './core/endpoint.js';
export type { EndpointInput, EndpointSpec } from './core/endpoint-spec.js';
export { parseEndpointSpec } from './core/endpoint-spec.js';
export type { ServiceStats, EndpointStats } from './service/service.js';
export type { IstioLiveStats } from './istio/live.js';
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
export type { BalancerName, BuiltinBalancers, CustomBalancers } from './balancers/config.js';
export type { CustomDiscoveries, CustomDiscoveryConfig } from './discovery/discovery.js';
export type { BuiltinDiscoveryConfig, StaticDiscoveryConfig, DnsDiscoveryConfig, DnsSrvDiscoveryConfig, KubernetesDiscoveryConfig, Duration } from './discovery/builtins.js';
export type { KubernetesAccessConfig } from './discovery/kubernetes-client.js';
export type { Logger } from './core/log.js';
export type { MeshEventMap, MeshEventName, Disposable } from './core/events.js';
export { enableMetrics, type MetricsOptions } from './observability/metrics.js';
export { liveView, type LiveViewOptions } from './observability/live-view.js';
export type { RetryConfig, RetryOn } from './layers/retry-policy.js';
export type { BudgetConfig } from './layers/retry-budget.js';
export type { OutlierDetectionConfig, CircuitBreakerConfig, HealthCheckConfig, SlowStartConfig } from './health/health-config.js';
export type { LimitsConfig } from './layers/concurrency-limit.js';
export type { AdaptiveLimitConfig, Gradient2Config, VegasConfig } from './layers/adaptive-limit.js';
export type { ReportedLoad } from './load/endpoint-load.js';
export type { LoadReport } from './load/orca.js';
export type { RateLimitConfig } from './layers/rate-limit.js';
export type { ServiceBreakerConfig } from './layers/service-breaker.js';
export type { GlobalRateLimitConfig } from './layers/global-rate-limit.js';
export type { SubsetConfig, RouteConfig, FaultConfig, RouteHeaders, HeaderOperations, RewriteConfig, RedirectConfig, DirectResponseConfig } from './layers/route.js';
export type { RouteMatch, StringMatch } from './routing/match.js';
export type { Locality, LocalityLbConfig } from './routing/locality.js';
export { TlsCertificatesUnavailableError, TlsIdentityMismatchError, type IstioMutualTlsConfig, type StandardTlsConfig, type TlsConfig } from './security/tls.js';
export { fromIstio, type DiscoveryInfo, type FromIstioOptions, type FromIstioResult, type SourceIdentity } from './istio/istio.js';
export {
  MeshError,
  isMeshError,
  UnknownServiceError,
  NoHealthyEndpointError,
  InvalidConfigError,
  LayerFailedError,
  TimeoutError,
  DeadlineExceededError,
  MeshClosedError,
  OverloadedError,
  RateLimitedError,
  CircuitOpenError,
  RetryBudgetExhaustedError,
  PerTryTimeoutError,
  UpstreamError,
  RequestBodyError,
  InvalidRequestError,
  type MeshErrorCode,
  type MeshErrorDetails,
} from './core/errors.js';
