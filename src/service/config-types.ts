/**
 * The mesh configuration as users write it: `createMesh(config)` takes a {@link MeshConfig}.
 * Parsing and validation are in config.ts; every field's type and default is documented here
 * (and generated from here into the shipped JSON Schema, scripts/json-schema.mjs).
 */
import type { Dispatcher } from 'undici';
import type { Logger } from '../core/log.js';
import type { BalancerDefinition, BalancerFactory } from '../balancers/balancer.js';
import type { BalancerConfig } from '../balancers/config.js';
import type { DiscoveryConfig } from '../discovery/builtins.js';
import type { DiscoveryDefinition, DiscoveryFactory } from '../discovery/discovery.js';
import type { KubernetesAccessConfig } from '../discovery/kubernetes-client.js';
import type { EndpointInput } from '../core/endpoint-spec.js';
import type { Duration } from '../config/duration.js';
import type { CircuitBreakerConfig, HealthCheckConfig, OutlierDetectionConfig, SlowStartConfig } from '../health/health-config.js';
import type { RetryConfig } from '../layers/retry-policy.js';
import type { HedgeConfig } from '../layers/hedge-config.js';
import type { LimitsConfig } from '../layers/concurrency-limit.js';
import type { RateLimitConfig } from '../layers/rate-limit.js';
import type { ServiceBreakerConfig } from '../layers/service-breaker.js';
import type { RouteConfig, SubsetConfig } from '../layers/route.js';
import type { Locality, LocalityLbConfig } from '../routing/locality.js';
import type { TlsConfig } from '../security/tls.js';
import type { Interceptor, InterceptorFactory } from '../request/layer.js';

export type { BalancerConfig, DiscoveryConfig };

/** Per-endpoint connection pool settings (undici `Pool` options). */
export interface PoolConfig {
  /** Max connections per endpoint. @default 64 */
  connections?: number;
  /** HTTP/1.1 pipelining depth. @default 1 */
  pipelining?: number;
  /** Idle keep-alive timeout in ms. @default 4000 */
  keepAliveTimeoutMs?: Duration;
  /** TCP connect timeout in ms. @default 2000 */
  connectTimeoutMs?: Duration;
  /** Max wait for response headers per attempt, ms; 0 = none (undici's own limit is off too). @default 30000 */
  headersTimeoutMs?: Duration;
  /** Max idle time between response body chunks per attempt, ms; 0 = none. @default 300000 */
  bodyTimeoutMs?: Duration;
  /** Largest response header block accepted, bytes; larger fails the request. @default 16384 */
  maxHeaderSizeBytes?: number;
  /** Largest response body accepted, bytes; -1 = no limit. @default -1 */
  maxResponseSizeBytes?: number;
}

/** One service the process calls. */
export interface ServiceConfig {
  /** Where the endpoints come from. Shorthand: `endpoints: [...]` means static discovery. */
  discovery?: DiscoveryConfig;
  /** Shorthand for `discovery: { type: 'static', endpoints }`. */
  endpoints?: EndpointInput[];
  /** Load-balancing strategy. @default 'prequal' */
  balancer?: BalancerConfig;
  /** Deadline for the whole request (all attempts, until the response ends): ms, or a duration such as `'2s'`; 0 = none. @default 0 */
  timeoutMs?: Duration;
  /** @deprecated use `timeoutMs` */
  timeout?: number;
  /** Extra host names that address this service, exactly as written (e.g. `orders.shop.example`). */
  hosts?: string[];
  /**
   * Kubernetes namespaces this service is known in: for each, `<name>.<ns>`, `<name>.<ns>.svc` and
   * `<name>.<ns>.svc.<clusterDomain>` address it too (`<name>` is the service's name, when it has no
   * dot). A service with Kubernetes discovery is always known in that discovery's namespace as well;
   * any other namespace is an unknown host. `[]` for none. @default the mesh's `namespace`, if set
   */
  namespaces?: string[];
  /**
   * The port callers address this service on: with it, `http://<host>:<port>/` for any of the
   * service's host names reaches this service — and only on that port; without it, any port does,
   * unless another service claims that port of the host. Envoy keeps one cluster per port of a
   * service: two meshlet services with the same hosts, one with `port`, are the same (a
   * `9080.reviews` of fromIstio with its own policies beside `reviews`). The scheme's port counts
   * when the URL gives none (80, 443).
   */
  port?: number;
  /**
   * Host header sent to endpoints: the host the caller addressed (as a sidecar does), or the
   * endpoint's address. A Host header the caller sets is replaced either way. @default 'service'
   */
  hostHeader?: 'service' | 'endpoint';
  /** How long a request waits for the first discovery answer (ms, or a duration). @default 5000 */
  readyTimeoutMs?: Duration;
  /** @deprecated use `readyTimeoutMs` */
  readyTimeout?: number;
  /** Connection pool per endpoint. */
  pool?: PoolConfig;
  /** Retry policy; `false` turns retries off. Defaults as Istio's: 2 retries on connect failures, resets and 503. */
  retry?: RetryConfig | false;
  /**
   * Hedged requests: a copy of a request still outstanding after the hedge delay goes to another
   * endpoint, the first response wins. `true` takes the defaults (delay: the service's p95
   * latency; 2 copies; 5 % budget). Only idempotent methods. Off unless set.
   */
  hedge?: HedgeConfig | boolean;
  /**
   * Bytes of a streamed request body (and of every `fetch` body) kept as it is sent, so a retry
   * or a hedge can send it again; a longer body is not replayed. 0 = keep none. @default 65536
   */
  perRequestBufferLimitBytes?: number;
  /** Concurrency limits (Envoy's circuit-breaker thresholds). */
  limits?: LimitsConfig;
  /** Token-bucket rate limit for requests to this service. Off unless set. */
  rateLimit?: RateLimitConfig;
  /** One circuit for the whole service (opossum, Hystrix-style): fail fast while it fails as a whole. Off unless set. */
  serviceBreaker?: ServiceBreakerConfig;
  /** Passive outlier detection (consecutive failures → ejection); `false` turns it off. On by default. */
  outlierDetection?: OutlierDetectionConfig | false;
  /** Per-endpoint circuit breaker (error rate over a rolling window); `false` turns it off. On by default. */
  circuitBreaker?: CircuitBreakerConfig | false;
  /** Active HTTP health checks. Off unless set. */
  healthCheck?: HealthCheckConfig;
  /** Slow start: ramp a new endpoint's share of traffic up over a window. Off unless set. */
  slowStart?: SlowStartConfig;
  /**
   * Envoy's panic threshold, per priority level and per target (the service, each subset): a level with
   * fewer than this percentage of its endpoints available, while the levels' total health is below
   * 100, is balanced over all its endpoints. 0 turns panic off. @default 50
   */
  panicThreshold?: number;
  /** Named subsets of the endpoints, by labels (Istio DestinationRule subsets). */
  subsets?: Record<string, SubsetConfig<BalancerConfig>>;
  /** Ordered HTTP routes (Istio VirtualService http routes); the first match wins. */
  routes?: RouteConfig[];
  /** Locality-aware balancing; on by default once the process knows its locality. */
  localityLb?: LocalityLbConfig;
  /** TLS to the endpoints (https endpoints, or plain addresses from discovery upgraded to TLS). */
  tls?: TlsConfig;
  /** Layers of your own for this service, after the mesh-wide ones (see `MeshConfig.interceptors`). */
  interceptors?: (Interceptor | InterceptorFactory)[];
}

/**
 * `unknownHosts: { passthrough: [...] }`: the hosts that are not services and still go out through
 * an ordinary Agent; every other one fails with UNKNOWN_SERVICE.
 */
export interface PassthroughList {
  /**
   * Exact host names or IP addresses (`'api.stripe.com'`, `'10.0.0.5'`, `'[fd00::1]'`), and domain
   * suffixes starting with `.` (`'.example.org'` lets `a.example.org` and `b.a.example.org` through,
   * not `example.org` itself). No port: an entry matches every port.
   */
  passthrough: string[];
}

/** Configuration accepted by `createMesh`. */
export interface MeshConfig {
  /** The JSON Schema a config file names for editors (`./node_modules/meshletjs/schema.json`); ignored. */
  $schema?: string;
  /**
   * Services by logical name; the name is the host callers use (`http://orders/...`). With
   * `istio` it may be left out ({@link IstioMeshConfig}): services then come from the cluster.
   */
  services: Record<string, ServiceConfig>;
  /**
   * Follow the cluster's DestinationRules and VirtualServices live (README, "Live config from the
   * cluster"): services for the hosts they name come up with `kubernetes` discovery, and changes
   * apply without a restart.
   */
  istio?: IstioLiveConfig;
  /**
   * What to do with a host that is not a service: pass it through to an ordinary Agent, fail with
   * UNKNOWN_SERVICE, or pass through only the hosts of a list (`{ passthrough: [...] }`).
   * Note that with `'passthrough'`, a redirect a service answers is followed by `fetch` (through
   * `mesh.dispatcher` or `setGlobalDispatcher`) to whatever host it names. @default 'passthrough'
   */
  unknownHosts?: 'passthrough' | 'reject' | PassthroughList;
  /**
   * The Kubernetes namespace of the services that say nothing else (each service's `namespaces`
   * defaults to `[namespace]`): usually the namespace this process runs in. Unset by default.
   */
  namespace?: string;
  /** The cluster's DNS domain, for the `<name>.<ns>.svc.<clusterDomain>` form of service names. @default 'cluster.local' */
  clusterDomain?: string;
  /**
   * Where requests to hosts that are not services go when they pass through: an undici Dispatcher
   * of yours — an Agent with its own `connect` options (a DNS lookup, CAs), a ProxyAgent to an
   * egress proxy. Yours to close: `mesh.close()` leaves it open. (The mesh's http.Agent passes such
   * hosts over its own sockets instead, as any http.Agent.) @default an undici Agent the mesh owns
   */
  passthroughDispatcher?: Dispatcher;
  /** Balancers registered for this mesh only, by name. */
  balancers?: Record<string, BalancerFactory<any> | BalancerDefinition<any>>;
  /** Discovery types registered for this mesh only, by type. */
  discoveries?: Record<string, DiscoveryFactory<any> | DiscoveryDefinition<any>>;
  /**
   * Layers of your own, for every service: each is an {@link Interceptor} (or a factory that makes
   * one per service, or returns null to skip a service) and runs after routing and the deadline,
   * before the rate and concurrency limits — see service/pipeline.ts.
   */
  interceptors?: (Interceptor | InterceptorFactory)[];
  /**
   * Where warnings and debug lines go: an object whose `debug` and `warn`, when given, are
   * functions (`console` fits). One that throws or rejects is ignored.
   * @default warnings to stderr, debug lines to util.debuglog sections `meshlet:*` (NODE_DEBUG=meshlet*)
   */
  logger?: Partial<Logger>;
  /** Random source in [0, 1), for deterministic tests; a reading outside it (NaN…) is corrected, warned once. @default Math.random */
  random?: () => number;
  /** Monotonic clock in ms, for deterministic tests; a non-finite or backward reading repeats the last good one, warned once. @default performance.now */
  now?: () => number;
  /** Where this process runs, for locality-aware balancing. @default from MESHLET_REGION / MESHLET_ZONE */
  locality?: Locality;
  /**
   * Which redirects `mesh.fetch` follows: within the called origin only, or any (credentials dropped
   * when the origin changes). @default 'same-origin'
   */
  redirects?: 'same-origin' | 'any';
}

/**
 * The part of {@link MeshConfig} that JSON or YAML can carry — what `mesh.toJSON()` writes and
 * what the shipped JSON Schema (`meshletjs/schema.json`) describes: no functions, no client objects.
 */
export interface MeshConfigJSON extends Omit<MeshConfig, 'services' | 'balancers' | 'discoveries' | 'logger' | 'random' | 'now' | 'interceptors' | 'passthroughDispatcher'> {
  services: Record<string, Omit<ServiceConfig, 'interceptors'>>;
}

/** A {@link MeshConfig} whose services all may come from the cluster's Istio resources. */
export type IstioMeshConfig = Omit<MeshConfig, 'services' | 'istio'> & { services?: Record<string, ServiceConfig>; istio: IstioLiveConfig };

/**
 * `istio`: watch Istio's DestinationRule and VirtualService resources (networking.istio.io v1,
 * else v1beta1, else v1alpha3) in `namespaces`. Cluster access as for the `kubernetes` discovery.
 */
export interface IstioLiveConfig extends KubernetesAccessConfig {
  /** The namespaces whose resources are watched (at least one). */
  namespaces: string[];
  /** The Service port of the services that come up, by name or target port number. @default 'http' */
  port?: string | number;
  /**
   * How long a request to a host of a watched namespace (`name.<ns>`, `….svc`, `….svc.cluster.local`)
   * waits for the first list of resources before it is routed as it then can be. @default 5000
   */
  readyTimeoutMs?: Duration;
  /** Server-side timeout of each watch, 1 s – 1 h. @default a random 300–600 s per watch */
  watchTimeoutMs?: Duration;
  /** The services' endpoints get their nodes' regions (the `kubernetes` discovery's `nodeLabels`; needs access to `nodes`). @default false */
  nodeLabels?: boolean;
}
