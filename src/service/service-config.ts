/**
 * One service's config, parsed: {@link parseService} validates a `services.<name>` entry —
 * discovery (by the discovery's own parser), balancer, subsets and routes, retry and hedge, hosts
 * and port, pool, health, limits, rate limit, TLS, interceptors — into a frozen
 * {@link ParsedService}. The mesh's parser (config.ts) calls it for each service, and
 * {@link parseInterceptors} for the mesh's own interceptors; every error names the field's path,
 * what was expected and what was found.
 */
import type { BalancerRegistry } from '../balancers/balancer.js';
import { decayMsOf, defaultBalancer, parseBalancer, type ParsedBalancer } from '../balancers/config.js';
import type { DiscoveryDefinition, DiscoveryRegistry } from '../discovery/discovery.js';
import { describe } from '../core/endpoint-spec.js';
import { InvalidConfigError } from '../core/errors.js';
import { expectList, expectObject, join, optEnum, optNumber, rejectUnknown, userCode, type Raw } from '../config/check.js';
import { optDurationMs } from '../config/duration.js';
import { HEALTH_CONFIG_KEYS, parseHealthConfig, type ParsedHealth } from '../health/endpoint-health.js';
import { parseRetryConfig, type ParsedRetry } from '../layers/retry-policy.js';
import { checkHedgeOnPerTryTimeout, parseHedgeConfig, type ParsedHedge } from '../layers/hedge-config.js';
import { parseLimitsConfig, type ParsedLimits } from '../layers/concurrency-limit.js';
import { parseRateLimitConfig, type ParsedRateLimit } from '../layers/rate-limit.js';
import { parseServiceBreaker, type ParsedServiceBreaker } from '../layers/service-breaker.js';
import { parseRoutes, parseSubsets, type ParsedRoute, type ParsedSubset } from '../layers/route.js';
import { parseLocalityLb, type ParsedLocalityLb } from '../routing/locality.js';
import { checkIstioIdentities, parseTlsConfig, type ParsedTls } from '../security/tls.js';
import type { Interceptor, InterceptorFactory, LayerContext } from '../request/layer.js';
import { parseNamespaces, serviceAddresses, type ParsedMeshHosts } from './hosts.js';

/** The largest `pool.maxHeaderSizeBytes`: no header block the mesh parses is ever larger. */
export const MAX_HEADER_SIZE_BYTES = 16_777_216;

export interface ParsedPool {
  readonly connections: number;
  readonly pipelining: number;
  readonly keepAliveTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  readonly maxHeaderSizeBytes: number;
  readonly maxResponseSizeBytes: number;
}

export interface ParsedService {
  readonly name: string;
  readonly hosts: readonly string[];
  /** The namespaces configured (`namespaces`, or the mesh's `namespace`); the discovery's is added to `addresses`. */
  readonly namespaces: readonly string[];
  /** Every host name that addresses the service (service/hosts.ts), with `:<port>` when it has a port. */
  readonly addresses: readonly string[];
  /** The port callers address it on, or null for any (no other service claims). */
  readonly port: number | null;
  readonly discoveryType: string;
  readonly discoveryOptions: unknown;
  readonly discovery: DiscoveryDefinition<any>;
  readonly balancer: ParsedBalancer;
  readonly subsets: readonly ParsedSubset<ParsedBalancer>[];
  readonly routes: readonly ParsedRoute[];
  readonly localityLb: ParsedLocalityLb;
  readonly tls: ParsedTls | null;
  readonly timeoutMs: number;
  readonly hostHeader: 'service' | 'endpoint';
  readonly readyTimeoutMs: number;
  readonly pool: ParsedPool;
  readonly health: ParsedHealth;
  readonly retry: ParsedRetry | null;
  /** Hedging of the service's requests, or null (off). */
  readonly hedge: ParsedHedge | null;
  /** Bytes of a streamed request body kept for a retry or a hedge (0: none). */
  readonly perRequestBufferLimitBytes: number;
  readonly limits: ParsedLimits;
  readonly rateLimit: ParsedRateLimit | null;
  readonly serviceBreaker: ParsedServiceBreaker | null;
  readonly interceptors: readonly InterceptorFactory[];
}

/**
 * Default of `perRequestBufferLimitBytes`: 64 KiB covers the request bodies of typical API calls
 * while bounding what a full concurrency limit (1,024 requests) can hold at 64 MiB; Envoy's
 * 1 MiB default would allow 1 GiB inside an application's heap.
 */
export const DEFAULT_BUFFER_LIMIT_BYTES = 64 * 1024;

/** A service name, and each of its `hosts`: a lower-case host name. */
export const SERVICE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const SERVICE_KEYS = [
  'discovery',
  'endpoints',
  'balancer',
  'timeoutMs',
  'hosts',
  'namespaces',
  'port',
  'hostHeader',
  'readyTimeoutMs',
  'pool',
  'retry',
  'hedge',
  'perRequestBufferLimitBytes',
  'limits',
  'rateLimit',
  'serviceBreaker',
  'subsets',
  'routes',
  'localityLb',
  'tls',
  'interceptors',
  ...HEALTH_CONFIG_KEYS,
];

/** Validate one service's config (`path`: `services.<name>`). */
export function parseService(
  name: string,
  s: Raw,
  path: string,
  balancers: BalancerRegistry,
  discoveries: DiscoveryRegistry,
  meshHosts: ParsedMeshHosts,
): ParsedService {
  rejectUnknown(s, SERVICE_KEYS, path, ['timeout', 'readyTimeout']);

  // discovery
  let discoveryRaw: Raw;
  let discoveryPath: string;
  if (s.discovery !== undefined && s.endpoints !== undefined) {
    throw new InvalidConfigError(join(path, 'endpoints'), 'give either "discovery" or "endpoints", not both');
  }
  if (s.endpoints !== undefined) {
    discoveryRaw = { type: 'static', endpoints: s.endpoints };
    discoveryPath = path;
  } else if (s.discovery !== undefined) {
    discoveryPath = join(path, 'discovery');
    discoveryRaw = expectObject(s.discovery, discoveryPath);
  } else {
    throw new InvalidConfigError(join(path, 'discovery'), 'required: where this service\'s endpoints come from (e.g. { type: "static", endpoints: [...] })');
  }
  const { type: discoveryType, ...discoveryRest } = discoveryRaw;
  if (typeof discoveryType !== 'string') {
    throw new InvalidConfigError(join(discoveryPath, 'type'), `expected a discovery type (${discoveries.names().join(', ')}), got ${describe(discoveryType)}`);
  }
  const discovery = discoveries.get(discoveryType);
  if (!discovery) {
    throw new InvalidConfigError(join(discoveryPath, 'type'), `unknown discovery type "${discoveryType}" (registered: ${discoveries.names().join(', ')})`);
  }
  const discoveryOptions = discovery.parseOptions
    ? userCode(discoveryPath, `the "${discoveryType}" discovery's parseOptions`, () => discovery.parseOptions!(discoveryRest, discoveryPath))
    : discoveryRest;

  const balancer = s.balancer === undefined ? defaultBalancer(balancers, join(path, 'balancer')) : parseBalancer(s.balancer, join(path, 'balancer'), balancers);
  const subsets = parseSubsets(s.subsets, join(path, 'subsets'), (raw, p) => {
    const b = parseBalancer(raw, p, balancers);
    // The latency estimate peak-ewma's decayMs shapes is the endpoint's, shared by every subset:
    // only the service's balancer sets it, and a subset's other value would be silently unused.
    const own = decayMsOf(b);
    if (typeof raw === 'object' && raw !== null && 'decayMs' in raw && own !== decayMsOf(balancer)) {
      throw new InvalidConfigError(join(p, 'decayMs'), `a subset cannot set its own decay (${own} ms, the service's is ${decayMsOf(balancer)} ms): the latency estimate belongs to the endpoint, shared by every subset — set decayMs on the service's balancer`);
    }
    return b;
  });
  const routes = parseRoutes(s.routes, join(path, 'routes'), new Set(subsets.map((x) => x.name)), name);
  const retry = parseRetryConfig(s.retry, join(path, 'retry'));
  const hedge = parseHedgeConfig(s.hedge, join(path, 'hedge'), { route: false }) ?? null;
  checkHedgeOnPerTryTimeout(hedge, retry?.perTryTimeoutMs ?? 0, join(path, 'hedge'));
  routes.forEach((r, i) => {
    const applies = r.retry !== undefined ? r.retry : retry;
    checkHedgeOnPerTryTimeout(r.hedge, applies?.perTryTimeoutMs ?? 0, join(join(join(path, 'routes'), i), 'hedge'));
  });

  // hosts
  let hosts: string[] = [];
  if (s.hosts !== undefined) {
    hosts = expectList(s.hosts, join(path, 'hosts'), 'an array of host names').map((h, i) => {
      if (typeof h !== 'string' || !SERVICE_NAME.test(h)) {
        throw new InvalidConfigError(join(join(path, 'hosts'), i), `expected a lower-case host name, got ${describe(h)}`);
      }
      return h;
    });
  }
  const namespaces = parseNamespaces(s.namespaces, join(path, 'namespaces'), meshHosts.namespace);
  const discoveryNamespace = discovery.namespace?.(discoveryOptions);
  const known = discoveryNamespace === undefined ? namespaces : [...namespaces, discoveryNamespace];
  const port = s.port === undefined ? null : optNumber(s, 'port', path, 0, { integer: true, min: 1, max: 65_535 });
  const addresses = serviceAddresses(name, hosts, known, meshHosts.clusterDomain).map((a) => (port === null ? a : `${a}:${port}`));

  const poolRaw = s.pool === undefined ? {} : expectObject(s.pool, join(path, 'pool'));
  const poolPath = join(path, 'pool');
  rejectUnknown(
    poolRaw,
    ['connections', 'pipelining', 'keepAliveTimeoutMs', 'connectTimeoutMs', 'headersTimeoutMs', 'bodyTimeoutMs', 'maxHeaderSizeBytes', 'maxResponseSizeBytes'],
    poolPath,
  );
  const pool: ParsedPool = Object.freeze({
    connections: optNumber(poolRaw, 'connections', poolPath, 64, { integer: true, min: 1, max: 65_536 }),
    pipelining: optNumber(poolRaw, 'pipelining', poolPath, 1, { integer: true, min: 0, max: 1024 }),
    keepAliveTimeoutMs: optDurationMs(poolRaw, 'keepAliveTimeoutMs', poolPath, 4_000, { min: 1, max: 3_600_000 }),
    connectTimeoutMs: optDurationMs(poolRaw, 'connectTimeoutMs', poolPath, 2_000, { min: 1, max: 600_000 }),
    headersTimeoutMs: optDurationMs(poolRaw, 'headersTimeoutMs', poolPath, 30_000, { min: 0, max: 86_400_000 }),
    bodyTimeoutMs: optDurationMs(poolRaw, 'bodyTimeoutMs', poolPath, 300_000, { min: 0, max: 86_400_000 }),
    maxHeaderSizeBytes: optNumber(poolRaw, 'maxHeaderSizeBytes', poolPath, 16_384, { integer: true, min: 1024, max: MAX_HEADER_SIZE_BYTES }),
    maxResponseSizeBytes: optNumber(poolRaw, 'maxResponseSizeBytes', poolPath, -1, { integer: true, min: -1 }),
  });

  return Object.freeze({
    name,
    hosts: Object.freeze(hosts),
    namespaces,
    addresses,
    port,
    discoveryType,
    discoveryOptions,
    discovery,
    balancer,
    subsets: Object.freeze(subsets),
    routes: Object.freeze(routes),
    localityLb: parseLocalityLb(s.localityLb, join(path, 'localityLb')),
    tls: checkIstioIdentities(parseTlsConfig(s.tls, join(path, 'tls')), discovery.serviceAccounts?.(discoveryOptions) === true, join(path, 'tls')),
    timeoutMs: optDurationMs(s, 'timeoutMs', path, 0, { min: 0, max: 86_400_000 }, { key: 'timeout', unitMs: 1 }),
    hostHeader: optEnum(s, 'hostHeader', path, ['service', 'endpoint'], 'service'),
    readyTimeoutMs: optDurationMs(s, 'readyTimeoutMs', path, 5_000, { min: 0, max: 600_000 }, { key: 'readyTimeout', unitMs: 1 }),
    pool,
    health: parseHealthConfig(s, path),
    retry,
    hedge,
    perRequestBufferLimitBytes: optNumber(s, 'perRequestBufferLimitBytes', path, DEFAULT_BUFFER_LIMIT_BYTES, { integer: true, min: 0, max: 2 ** 30 }),
    limits: parseLimitsConfig(s.limits, join(path, 'limits'), true),
    rateLimit: parseRateLimitConfig(s.rateLimit, join(path, 'rateLimit')),
    serviceBreaker: parseServiceBreaker(s.serviceBreaker, join(path, 'serviceBreaker')),
    interceptors: parseInterceptors(s.interceptors, join(path, 'interceptors')),
  });
}

/** Interceptors as factories: an object with `name` and `handle`, or a function that makes one. */
export function parseInterceptors(raw: unknown, path: string): readonly InterceptorFactory[] {
  if (raw === undefined) return [];
  return Object.freeze(
    expectList(raw, path, 'a list of interceptors').map((v, i) => {
      const p = join(path, i);
      if (typeof v === 'function') {
        return (ctx: LayerContext) => {
          const made = userCode(p, 'the interceptor factory', () => (v as InterceptorFactory)(ctx));
          if (made !== null) checkInterceptor(made, p);
          return made;
        };
      }
      checkInterceptor(v, p);
      return () => v as Interceptor;
    }),
  );
}

function checkInterceptor(v: unknown, path: string): void {
  const o = v as Partial<Interceptor> | null;
  if (typeof o !== 'object' || o === null || typeof o.handle !== 'function' || typeof o.name !== 'string' || o.name === '') {
    throw new InvalidConfigError(path, `expected an interceptor { name, handle(call, next) } or a function returning one, got ${describe(v)}`);
  }
}
