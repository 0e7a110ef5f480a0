/**
 * The parts of a DestinationRule `trafficPolicy` besides its load balancer (load-balancer.ts),
 * field by field: `connectionPool`, `outlierDetection` and `tls`, read as Istio's pilot programs
 * them (pilot/pkg/networking/core/cluster_traffic_policy.go): a count of 0 is "unset", TLS is off
 * unless a mode turns it on. destination-rule.ts puts the results into a service or a subset.
 */
import type { OutlierDetectionConfig } from '../health/health-config.js';
import type { LimitsConfig } from '../layers/concurrency-limit.js';
import type { StandardTlsConfig, TlsConfig } from '../security/tls.js';
import type { PoolConfig } from '../service/config.js';
import { UNLIMITED, MAX_CONNECTIONS } from './defaults.js';
import { UINT32_MAX, type Doc, type Obj } from './doc.js';
import { atMost, CAP, istioDuration, longest } from './bounds.js';

/** Where a policy applies: a subset shares the service's endpoints, connections and locality. */
export type Scope = 'service' | 'subset';

export interface ConnectionPoolRead {
  pool?: PoolConfig;
  limits?: LimitsConfig;
}

/**
 * `connectionPool`. Istio's `maxConnections` caps the connections of the whole cluster, and over
 * HTTP/1.1 each carries one request at a time: it bounds the requests in flight too, so it caps
 * `limits.maxRequests` (with `http2MaxRequests`, Envoy's max_requests breaker). A subset's pool is
 * only its request limits.
 */
export function connectionPool(cp: Obj, doc: Doc, path: string, scope: Scope): ConnectionPoolRead {
  const pool: PoolConfig = {};
  const limits: LimitsConfig = {};
  let maxConnections = 0;
  let maxRequests = 0;
  let pending = 0;
  let idle: { tcp?: number; http?: number } = {};
  const service = (f: (v: unknown, p: string) => void) => (scope === 'service' ? f : doc.reportAs('connection settings belong to the endpoints, which subsets share'));
  const http2 = doc.reportAs('meshlet talks HTTP/1.1 to endpoints: HTTP/2 settings do not apply');
  doc.fields(cp, path, {
    tcp: (t, tp) =>
      doc.fields(doc.obj(t, tp), tp, {
        maxConnections: (n, np) => (maxConnections = doc.count(n, np, UINT32_MAX)),
        connectTimeout: service((d, dp) => (pool.connectTimeoutMs = longest(istioDuration(d, doc, dp), CAP.connectTimeoutMs, doc, dp, 'a connect timeout'))),
        tcpKeepalive: doc.reportAs('TCP keep-alive probes are not supported'),
        maxConnectionDuration: doc.reportAs('connections are not closed after a maximum duration'),
        idleTimeout: service((d, dp) => (idle = { ...idle, tcp: idleMs(d, doc, dp) })),
      }),
    http: (h, hp) =>
      doc.fields(doc.obj(h, hp), hp, {
        http1MaxPendingRequests: (n, np) => (pending = doc.count(n, np, UINT32_MAX)),
        http2MaxRequests: (n, np) => (maxRequests = doc.count(n, np, UINT32_MAX)),
        maxRequestsPerConnection: doc.reportAs('connections are not closed after a number of requests'),
        maxRetries:
          scope === 'service'
            ? (n: unknown, np: string) => {
                const v = doc.count(n, np, UINT32_MAX);
                if (v > 0) limits.maxRetries = Math.min(v, UNLIMITED);
              }
            : doc.reportAs("meshlet's retry limit is the service's: a subset cannot have its own"),
        idleTimeout: service((d, dp) => (idle = { ...idle, http: idleMs(d, doc, dp) })),
        h2UpgradePolicy: (v, p) => {
          if (v !== 'DEFAULT' && v !== 'DO_NOT_UPGRADE') http2(v, p);
        },
        useClientProtocol: (v, p) => {
          if (doc.bool(v, p)) doc.unsupported(p, 'meshlet talks HTTP/1.1 to endpoints, whatever the caller used');
        },
        maxConcurrentStreams: http2,
        http2KeepAlive: http2,
      }),
  });
  // 0 is "unset" for Istio (its FIXME: zero cannot be told from unset).
  const caps = [maxRequests, maxConnections].filter((n) => n > 0);
  if (caps.length > 0) limits.maxRequests = Math.min(...caps, UNLIMITED);
  // Envoy queues a request only while it waits for a connection — up to http1MaxPendingRequests,
  // when the connections are the tighter cap; one over the max_requests breaker fails at once.
  const connectionsBind = maxConnections > 0 && (maxRequests === 0 || maxConnections <= maxRequests);
  if (maxRequests > 0 && !connectionsBind) limits.maxPendingRequests = 0;
  else if (pending > 0) limits.maxPendingRequests = Math.min(pending, UNLIMITED);
  if (scope === 'service' && maxConnections > 0) pool.connections = Math.min(maxConnections, MAX_CONNECTIONS);
  const keepAlive = idle.http ?? idle.tcp; // Istio: http.idleTimeout, else tcp.idleTimeout
  if (keepAlive !== undefined) pool.keepAliveTimeoutMs = keepAlive;
  return {
    ...(Object.keys(pool).length > 0 ? { pool } : {}),
    ...(Object.keys(limits).length > 0 ? { limits } : {}),
  };
}

/** meshlet's longest keep-alive of an idle connection (service-config.ts, `pool.keepAliveTimeoutMs`). */
const MAX_IDLE_MS = 3_600_000;

/**
 * An idle timeout; 0 (never close an idle connection) becomes meshlet's longest, 1 h, and so does
 * a longer one (reported). Istio refuses one between 0 and 1 ms (ValidateDuration).
 */
function idleMs(v: unknown, doc: Doc, path: string): number {
  if (doc.duration(v, path) > 0) return longest(istioDuration(v, doc, path), MAX_IDLE_MS, doc, path, 'an idle timeout');
  doc.unsupported(path, "0 (no idle timeout) is applied as meshlet's longest, 1 h");
  return MAX_IDLE_MS;
}

export interface OutlierRead {
  outlierDetection: OutlierDetectionConfig;
  /** `minHealthPercent`, Envoy's panic threshold; Istio's default is 0 (no panic). */
  panicThreshold: number;
}

/**
 * `outlierDetection`. Istio takes any UInt32 count (meshlet counts up to 1,000,000: a larger one
 * is applied so, and reported) and refuses an interval or ejection time under 1 ms.
 */
export function outlierDetection(o: Obj, doc: Doc, path: string): OutlierRead {
  const od: OutlierDetectionConfig = {};
  let panicThreshold = 0;
  const consecutive = (n: unknown, np: string) => atMost(doc.wrappedCount(n, np), CAP.consecutive, doc, np, 'a count of consecutive failures');
  const time = (d: unknown, dp: string, what: string) => longest(istioDuration(d, doc, dp), CAP.healthMs, doc, dp, what);
  doc.fields(o, path, {
    consecutive5xxErrors: (n, np) => (od.consecutive5xxErrors = consecutive(n, np)),
    consecutiveGatewayErrors: (n, np) => (od.consecutiveGatewayErrors = consecutive(n, np)),
    splitExternalLocalOriginErrors: (b, bp) => (od.splitExternalLocalOriginErrors = doc.bool(b, bp)),
    consecutiveLocalOriginFailures: (n, np) => {
      const v = consecutive(n, np);
      if (v > 0) od.consecutiveLocalOriginFailures = v; // 0: Envoy's default, 5
    },
    interval: (d, dp) => (od.intervalMs = time(d, dp, 'an outlier detection interval')),
    baseEjectionTime: (d, dp) => (od.baseEjectionTimeMs = time(d, dp, 'an ejection time')),
    maxEjectionPercent: (n, np) => {
      const v = doc.percent(n, np);
      if (v > 0) od.maxEjectionPercent = v; // 0: Envoy's default, 10 %
    },
    minHealthPercent: (n, np) => (panicThreshold = doc.percent(n, np)),
    consecutiveErrors: doc.reportAs('deprecated, and ignored by Istio: use consecutive5xxErrors or consecutiveGatewayErrors'),
    outlierDetectionHttpErrorCodes: doc.reportAs('meshlet counts 5xx (and gateway errors) as outlier failures, not a list of codes'),
  });
  return { outlierDetection: od, panicThreshold };
}

const TLS_MODES = ['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL'];

/** `tls`: on only with mode SIMPLE, MUTUAL or ISTIO_MUTUAL; Istio's default mode is DISABLE. */
export function tls(t: Obj, doc: Doc, path: string): TlsConfig | undefined {
  const out: StandardTlsConfig = {};
  const given: string[] = [];
  const field = (set: (v: unknown, p: string) => void) => (v: unknown, p: string) => {
    given.push(p);
    set(v, p);
  };
  let mode = 'DISABLE';
  doc.fields(t, path, {
    mode: (m, mp) => {
      const text = doc.str(m, mp);
      if (TLS_MODES.includes(text)) mode = text;
      else doc.unsupported(mp, `unknown TLS mode "${text}" (${TLS_MODES.join(', ')}): TLS stays off, as with Istio's default, DISABLE`);
    },
    caCertificates: field((s, sp) => (out.ca = doc.str(s, sp))),
    clientCertificate: field((s, sp) => (out.cert = doc.str(s, sp))),
    privateKey: field((s, sp) => (out.key = doc.str(s, sp))),
    sni: field((s, sp) => (out.servername = doc.str(s, sp))),
    subjectAltNames: field((s, sp) => (out.subjectAltNames = doc.list(s, sp).map((x, i) => doc.str(x, `${sp}[${i}]`)))),
    insecureSkipVerify: field((b, bp) => (out.insecureSkipVerify = doc.bool(b, bp))),
    credentialName: doc.reportAs('meshlet reads certificates from files or PEM, not Kubernetes secrets'),
    caCrl: doc.reportAs('certificate revocation lists are not supported'),
  });
  if (mode === 'ISTIO_MUTUAL') {
    // The mesh's certificates (istio-agent's files), Envoy's SNI unless `sni`, the destination's
    // service accounts unless `subjectAltNames` (pilot's conditionallyConvertToIstioMtls).
    const own = ['caCertificates', 'clientCertificate', 'privateKey', 'insecureSkipVerify'] as const;
    for (const k of own) if (t[k] !== undefined) doc.unsupported(`${path}.${k}`, "no effect with ISTIO_MUTUAL: the mesh's certificates (istio-agent's files) are used");
    return {
      mode: 'istio-mutual',
      ...(out.servername !== undefined ? { servername: out.servername } : {}),
      ...(out.subjectAltNames !== undefined ? { subjectAltNames: out.subjectAltNames } : {}),
    };
  }
  if (mode === 'DISABLE') {
    for (const p of given) doc.unsupported(p, 'no effect: the TLS mode is DISABLE (Istio\'s default when mode is not given)');
    return undefined;
  }
  if (mode === 'MUTUAL' && (out.cert === undefined || out.key === undefined)) doc.bad(path, 'mode MUTUAL needs clientCertificate and privateKey');
  if (mode === 'SIMPLE') {
    // SIMPLE originates TLS without a client certificate.
    for (const k of ['clientCertificate', 'privateKey'] as const) {
      if (t[k] !== undefined) doc.unsupported(`${path}.${k}`, 'no effect in mode SIMPLE (MUTUAL presents a client certificate)');
    }
    delete out.cert;
    delete out.key;
  }
  return out;
}
