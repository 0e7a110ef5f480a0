/**
 * A parsed config written back as config: what `mesh.toJSON()` returns. Every field is there with
 * its effective value — defaults filled, durations in ms, current field names — so that
 * `createMesh(JSON.parse(JSON.stringify(mesh)))` builds the same mesh. What JSON cannot carry is
 * left out and must be given again: functions (logger, random, now, interceptors, registered
 * balancers and discoveries, a `hashOn` function), a Redis `client` object, and secrets (a literal
 * Kubernetes token, an inline PEM private key, a Redis URL with credentials — file paths are kept).
 */
import type { ParsedBalancer } from '../balancers/config.js';
import type { ParsedHealth } from '../health/endpoint-health.js';
import type { ParsedRetry } from '../layers/retry-policy.js';
import { limitsToJSON } from '../layers/concurrency-limit.js';
import type { ParsedHedge } from '../layers/hedge-config.js';
import type { ParsedRateLimit } from '../layers/rate-limit.js';
import { isRedisUrl } from '../layers/global-rate-limit.js';
import type { ParsedRoute } from '../layers/route.js';
import { actionsToJSON } from '../layers/route-actions.js';
import type { ParsedLocalityLb } from '../routing/locality.js';
import type { ParsedTls } from '../security/tls.js';
import { ISTIO_CERT_DIR, ISTIO_FILES } from '../security/istio-mutual.js';
import { join } from 'node:path';
import type { ParsedMeshConfig, ParsedService } from './config.js';

type Json = Record<string, unknown>;

/** Drop undefined values (JSON would too; this keeps deep-equality checks honest). */
function clean<T extends Json>(o: T): T {
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o;
}

export function meshToJSON(m: ParsedMeshConfig): Json {
  const services: Json = {};
  for (const s of m.services) services[s.name] = serviceToJSON(s);
  const unknownHosts = typeof m.unknownHosts === 'string' ? m.unknownHosts : { passthrough: [...m.unknownHosts.passthrough] };
  return clean({
    services,
    unknownHosts,
    namespace: m.namespace,
    clusterDomain: m.clusterDomain,
    locality: m.locality && clean({ ...m.locality }),
    redirects: m.redirects,
  });
}

export function serviceToJSON(s: ParsedService): Json {
  const discovery = s.discovery.toJSON ? s.discovery.toJSON(s.discoveryOptions) : (s.discoveryOptions as Json);
  return clean({
    discovery: clean({ type: s.discoveryType, ...discovery }),
    balancer: balancerToJSON(s.balancer),
    timeoutMs: s.timeoutMs,
    hosts: [...s.hosts],
    namespaces: [...s.namespaces],
    port: s.port ?? undefined,
    hostHeader: s.hostHeader,
    readyTimeoutMs: s.readyTimeoutMs,
    pool: { ...s.pool },
    retry: retryToJSON(s.retry),
    hedge: hedgeToJSON(s.hedge),
    perRequestBufferLimitBytes: s.perRequestBufferLimitBytes,
    limits: limitsToJSON(s.limits),
    rateLimit: s.rateLimit === null ? undefined : rateLimitToJSON(s.rateLimit),
    ...healthToJSON(s.health),
    subsets: Object.fromEntries(
      s.subsets.map((x) => [
        x.name,
        clean({
          labels: { ...x.labels },
          balancer: x.balancer && balancerToJSON(x.balancer),
          retry: x.retry === undefined ? undefined : retryToJSON(x.retry),
          timeoutMs: x.timeoutMs,
          limits: x.limits && limitsToJSON(x.limits),
        }),
      ]),
    ),
    routes: s.routes.map(routeToJSON),
    localityLb: localityToJSON(s.localityLb),
    tls: s.tls === null ? undefined : tlsToJSON(s.tls),
    serviceBreaker: s.serviceBreaker === null ? undefined : { ...s.serviceBreaker },
  });
}

function balancerToJSON(b: ParsedBalancer): Json {
  const options = b.def.toJSON ? b.def.toJSON(b.options) : (b.options as Json);
  return clean({ type: b.name, ...options, hashOn: hashOnToJSON(b.hashOn) });
}

/** Policies as config again; key functions have no JSON form and are left out. */
function hashOnToJSON(h: ParsedBalancer['hashOn']): Json | undefined {
  if (h === undefined || typeof h === 'function') return undefined;
  if (!Array.isArray(h)) return { ...h };
  const list = (h as readonly object[]).filter((p) => typeof p !== 'function').map((p) => ({ ...p }));
  return list.length === 0 ? undefined : (list as unknown as Json);
}

function retryToJSON(r: ParsedRetry | null): Json | false {
  if (r === null) return false;
  // A subset's or route's policy without a budget of its own leaves `budget` out: it shares the service's.
  return clean({
    attempts: r.attempts,
    retryOn: [...r.retryOn],
    retriableStatusCodes: [...r.retriableStatusCodes],
    perTryTimeoutMs: r.perTryTimeoutMs,
    backoff: { baseMs: r.baseMs, maxMs: r.maxMs },
    retryAfterMaxMs: r.retryAfterMaxMs,
    budget: r.budget === null ? false : r.budget === undefined ? undefined : { ...r.budget },
  });
}

function hedgeToJSON(h: ParsedHedge | null): Json | false {
  if (h === null) return false;
  return clean({
    delayMs: h.delayMs ?? undefined,
    delayPercentile: h.delayPercentile ?? undefined,
    minDelayMs: h.delayPercentile === null ? undefined : h.minDelayMs,
    maxDelayMs: h.delayPercentile === null || h.maxDelayMs === Infinity ? undefined : h.maxDelayMs,
    hedgeOnPerTryTimeout: h.hedgeOnPerTryTimeout || undefined,
    maxAttempts: h.maxAttempts,
    nonFatalStatuses: [...h.nonFatalStatuses],
    budget: h.budget === null ? false : { ...h.budget },
    allowNonIdempotent: h.allowNonIdempotent || undefined,
  });
}

/**
 * A Redis URL with a user or a password in it (`redis://:secret@host`) is a secret: left out, as a
 * token is. A socket path (what is not `redis://` / `rediss://`) carries none.
 */
function hasCredentials(target: string): boolean {
  if (!isRedisUrl(target)) return false;
  try {
    const u = new URL(target);
    return u.username !== '' || u.password !== '';
  } catch {
    return true; // a URL we cannot read: do not risk writing a secret out
  }
}

function rateLimitToJSON(r: ParsedRateLimit): Json {
  const g = r.global;
  return clean({
    requestsPerSecond: r.service?.requestsPerSecond,
    burst: r.service?.burst,
    mode: r.mode,
    maxWaitMs: r.maxWaitMs,
    perEndpoint: r.perEndpoint === null ? undefined : { requestsPerSecond: r.perEndpoint.requestsPerSecond, burst: r.perEndpoint.burst },
    global: g === null ? undefined : clean({ redis: g.redis === undefined || hasCredentials(g.redis) ? undefined : g.redis, requestsPerSecond: g.requestsPerSecond, keyPrefix: g.keyPrefix, fallbackRequestsPerSecond: g.fallbackRequestsPerSecond, commandTimeoutMs: g.commandTimeoutMs }),
  });
}

function healthToJSON(h: ParsedHealth): Json {
  const o = h.outlier;
  const b = h.breaker;
  const c = h.healthCheck;
  return clean({
    outlierDetection:
      o === null
        ? false
        : clean({
            consecutive5xxErrors: o.consecutive5xx,
            consecutiveGatewayErrors: o.consecutiveGateway,
            splitExternalLocalOriginErrors: o.split,
            consecutiveLocalOriginFailures: o.consecutiveLocal,
            intervalMs: o.intervalMs,
            baseEjectionTimeMs: o.baseEjectionMs,
            maxEjectionTimeMs: o.maxEjectionMs,
            maxEjectionPercent: o.maxEjectionPercent,
            failurePercentage: o.failurePercentage === null ? undefined : { ...o.failurePercentage },
            successfulActiveHealthCheckUnejectHost: o.unejectOnCheck,
          }),
    circuitBreaker: b === null ? false : { ...b },
    healthCheck:
      c === null
        ? undefined
        : {
            path: c.path,
            intervalMs: c.intervalMs,
            intervalJitterPercent: c.jitterPercent,
            timeoutMs: c.timeoutMs,
            healthyThreshold: c.healthyThreshold,
            unhealthyThreshold: c.unhealthyThreshold,
            expectedStatuses: [...c.expected],
          },
    slowStart: h.slowStart === null ? undefined : { ...h.slowStart },
    panicThreshold: h.panicThresholdPercent,
  });
}

function routeToJSON(r: ParsedRoute): Json {
  const only = r.split === null ? r.destinations[0]! : null;
  const dest = (d: { service: string | null; subset: string | null }) => ({ service: d.service ?? undefined, subset: d.subset ?? undefined });
  return clean({
    name: r.name,
    match: r.match && structuredClone(r.match),
    ...(only === null ? {} : dest(only)),
    split: r.split === null ? undefined : Array.isArray(r.split) ? r.split.map((d) => ({ ...d })) : { ...r.split },
    timeoutMs: r.timeoutMs,
    retry: r.retry === undefined ? undefined : retryToJSON(r.retry),
    hedge: r.hedge === undefined ? undefined : hedgeToJSON(r.hedge),
    fault:
      r.delay === null && r.abort === null
        ? undefined
        : clean({
            delay: r.delay === null ? undefined : { fixedDelayMs: r.delay.ms, percent: r.delay.percent },
            abort: r.abort === null ? undefined : { httpStatus: r.abort.status, percent: r.abort.percent },
          }),
    // The first mirror as `mirror`, any others as `mirrors`: the same copies, in the same order.
    mirror: r.mirrors.length === 0 ? undefined : clean({ ...dest(r.mirrors[0]!), percent: r.mirrors[0]!.percent }),
    mirrors: r.mirrors.length < 2 ? undefined : r.mirrors.slice(1).map((m) => clean({ ...dest(m), percent: m.percent })),
    ...structuredClone(actionsToJSON(r.actions)),
  });
}

function localityToJSON(l: ParsedLocalityLb): Json {
  const failover: { from: string; to: string }[] = [];
  for (const [from, tos] of l.failover) for (const to of tos) failover.push({ from, to });
  // Istio takes one or the other: an empty list is not written.
  return clean({
    enabled: l.enabled,
    failover: failover.length > 0 ? failover : undefined,
    distribute: l.distribute.length > 0 ? l.distribute.map((d) => ({ from: d.from, to: Object.fromEntries(d.to.map((t) => [t.locality, t.weight])) })) : undefined,
  });
}

const isPem = (v: string | undefined): boolean => v !== undefined && v.trimStart().startsWith('-----BEGIN');

function tlsToJSON(t: ParsedTls): Json {
  if (t.istio !== null) {
    const i = t.istio;
    const file = (k: 'cert' | 'key' | 'ca', v: string | undefined) => (v === join(i.certDir, ISTIO_FILES[k]) ? undefined : v);
    return clean({
      mode: 'istio-mutual',
      certDir: i.certDir === ISTIO_CERT_DIR ? undefined : i.certDir,
      cert: file('cert', t.cert),
      key: file('key', t.key),
      ca: file('ca', t.ca),
      trustDomain: i.trustDomain,
      serviceAccounts: i.serviceAccounts === null ? undefined : [...i.serviceAccounts],
      subjectAltNames: t.subjectAltNames === null ? undefined : [...t.subjectAltNames],
      servername: t.servername,
      port: i.port,
      minVersion: t.minVersion,
      reloadIntervalMs: t.reloadIntervalMs,
    });
  }
  // An inline private key is a secret: its pair is left out with it (configure file paths to round-trip).
  const inlineKey = isPem(t.key);
  return clean({
    ca: t.ca,
    cert: inlineKey ? undefined : t.cert,
    key: inlineKey ? undefined : t.key,
    servername: t.servername,
    subjectAltNames: t.subjectAltNames === null ? undefined : [...t.subjectAltNames],
    minVersion: t.minVersion,
    insecureSkipVerify: t.insecureSkipVerify,
    reloadIntervalMs: t.reloadIntervalMs,
  });
}
