// How much of Istio's DestinationRule and VirtualService fromIstio covers (issue #13's closing
// table), measured field by field: each field of istio/api networking/v1alpha3
// destination_rule.proto and virtual_service.proto is set in a valid document, and fromIstio's
// output and reports are compared with the same document without it.
//
// Counted: every field of every message reachable from the two kinds, each message once. Value
// types (StringMatch, Percent, Duration, wrappers, PortSelector, WorkloadSelector) count as one
// field; so does a message counted as one (tls and tcp routes and corsPolicy, reported as a whole;
// headers, rewrite, redirect and directResponse, applied as a whole); a message read field by field counts through its
// fields only — except a subset's trafficPolicy, a route's mirror and mirrors, and the parts of a
// portLevelSettings entry, which count on their own too.
//
//   supported — applied as Istio applies it: the output changes, nothing is reported at its path;
//   partial   — applied, with a difference in meaning (README "From Istio") or values that are
//               reported: the output changes; `reported` shows a value that is reported;
//   reported  — not applied, and reported at its path;
//   ignored   — neither applied nor reported. There must be none.
import { describe, expect, test } from 'vitest';
import { fromIstio, type SourceIdentity } from '../../src/index.js';
import { toYaml, type Json } from '../support/istio-docs.js';

type Class = 'supported' | 'partial' | 'reported';
interface Field {
  /** `Message.field`, as in the protos (camelCase, as YAML writes it). */
  readonly name: string;
  readonly kind: 'DestinationRule' | 'VirtualService';
  readonly claim: Class;
  /** Where the value goes, under `spec`. */
  readonly at: string;
  readonly value: Json;
  /** For `partial`: a value of this field that fromIstio reports. */
  readonly reported?: Json;
  /** Changes to the base document, for fields that need a context. */
  readonly base?: readonly (readonly [string, Json])[];
  /** This process's identity (default: unknown — no labels, no namespace). */
  readonly source?: SourceIdentity;
}

const UNKNOWN: SourceIdentity = { labelsFile: '/nonexistent/meshlet-labels', env: {} };
const ME: SourceIdentity = { labels: { app: 'me' }, namespace: 'mine', env: {} };

const DR_BASE: Json = {
  host: 'r',
  trafficPolicy: {
    loadBalancer: {},
    connectionPool: { tcp: {}, http: {} },
    outlierDetection: {}, // with outlier detection, locality failover applies (Istio)
    tls: { mode: 'MUTUAL', clientCertificate: '/c.pem', privateKey: '/k.pem' },
  },
  subsets: [{ name: 'v1', labels: { version: 'v1' } }],
};
const VS_BASE: Json = {
  hosts: ['r'],
  http: [{ match: [{ uri: { prefix: '/' } }], route: [{ destination: { host: 'r', subset: 'v1' }, weight: 50 }, { destination: { host: 'r', subset: 'v2' }, weight: 50 }] }],
};

const TP = 'trafficPolicy';
const LB = `${TP}.loadBalancer`;
const CH = `${LB}.consistentHash`;
const LOC = `${LB}.localityLbSetting`;
const TCP = `${TP}.connectionPool.tcp`;
const HTTP = `${TP}.connectionPool.http`;
const OD = `${TP}.outlierDetection`;
const TLS = `${TP}.tls`;
const R = 'http[0]';
const M = `${R}.match[0]`;

const dr = (name: string, claim: Class, at: string, value: Json, more: Partial<Field> = {}): Field => ({ name, kind: 'DestinationRule', claim, at, value, ...more });
const vs = (name: string, claim: Class, at: string, value: Json, more: Partial<Field> = {}): Field => ({ name, kind: 'VirtualService', claim, at, value, ...more });

const FIELDS: readonly Field[] = [
  // ===== destination_rule.proto =====
  dr('DestinationRule.host', 'supported', 'host', 'reviews.prod'),
  dr('DestinationRule.exportTo', 'reported', 'exportTo', ['.']),
  dr('DestinationRule.workloadSelector', 'supported', 'workloadSelector', { matchLabels: { app: 'x' } }, { source: ME }), // not this process: left out
  // A port's settings go to the service of that port (9080.r), in place of the rule's.
  dr('PortTrafficPolicy.port', 'supported', `${TP}.portLevelSettings[0].port`, { number: 9080 }, { base: [[`${TP}.portLevelSettings`, [{ port: { number: 80 }, loadBalancer: { simple: 'RANDOM' } }]]] }),
  dr('PortTrafficPolicy.loadBalancer', 'supported', `${TP}.portLevelSettings[0].loadBalancer`, { simple: 'RANDOM' }, { base: [[`${TP}.portLevelSettings`, [{ port: { number: 9080 } }]]] }),
  dr('PortTrafficPolicy.connectionPool', 'supported', `${TP}.portLevelSettings[0].connectionPool`, { tcp: { maxConnections: 5 } }, { base: [[`${TP}.portLevelSettings`, [{ port: { number: 9080 } }]]] }),
  dr('PortTrafficPolicy.outlierDetection', 'supported', `${TP}.portLevelSettings[0].outlierDetection`, { consecutive5xxErrors: 3 }, { base: [[`${TP}.portLevelSettings`, [{ port: { number: 9080 } }]]] }),
  dr('PortTrafficPolicy.tls', 'supported', `${TP}.portLevelSettings[0].tls`, { mode: 'DISABLE' }, { base: [[`${TP}.portLevelSettings`, [{ port: { number: 9080 } }]]] }),
  dr('TrafficPolicy.tunnel', 'reported', `${TP}.tunnel`, { protocol: 'CONNECT', targetHost: 'proxy', targetPort: 3128 }),
  dr('TrafficPolicy.proxyProtocol', 'reported', `${TP}.proxyProtocol`, { version: 'V1' }),
  dr('RetryBudget.percent', 'partial', `${TP}.retryBudget.percent`, { value: 30 }), // a share of requests over time, not of those in flight
  dr('RetryBudget.minRetryConcurrency', 'reported', `${TP}.retryBudget.minRetryConcurrency`, 5),
  dr('RetryBudget.budgetInterval', 'reported', `${TP}.retryBudget.budgetInterval`, '1s'),
  dr('Subset.name', 'supported', 'subsets[0].name', 'v9'),
  dr('Subset.labels', 'supported', 'subsets[0].labels', { track: 'canary' }),
  dr('Subset.trafficPolicy', 'partial', 'subsets[0].trafficPolicy', { loadBalancer: { simple: 'RANDOM' } }, { reported: { outlierDetection: {} } }),
  dr('LoadBalancerSettings.simple', 'partial', `${LB}.simple`, 'RANDOM', { reported: 'PASSTHROUGH' }),
  dr('LoadBalancerSettings.zoneAwareLbSetting', 'reported', `${LB}.zoneAwareLbSetting`, { enabled: true }),
  dr('LoadBalancerSettings.warmupDurationSecs', 'supported', `${LB}.warmupDurationSecs`, '10s'),
  dr('ConsistentHashLB.httpHeaderName', 'supported', `${CH}.httpHeaderName`, 'x-user'),
  dr('ConsistentHashLB.useSourceIp', 'reported', `${CH}.useSourceIp`, true),
  dr('ConsistentHashLB.httpQueryParameterName', 'supported', `${CH}.httpQueryParameterName`, 'user'),
  dr('ConsistentHashLB.minimumRingSize', 'supported', `${CH}.minimumRingSize`, 2048),
  dr('RingHash.minimumRingSize', 'supported', `${CH}.ringHash.minimumRingSize`, 2048),
  dr('MagLev.tableSize', 'supported', `${CH}.maglev.tableSize`, 65537),
  dr('HTTPCookie.name', 'supported', `${CH}.httpCookie.name`, 'user', { base: [[`${CH}.httpCookie.name`, 'session']] }),
  dr('HTTPCookie.path', 'supported', `${CH}.httpCookie.path`, '/', { base: [[`${CH}.httpCookie.name`, 'user']] }),
  dr('HTTPCookie.ttl', 'supported', `${CH}.httpCookie.ttl`, '10s', { base: [[`${CH}.httpCookie.name`, 'user']] }),
  dr('HTTPCookie.attributes', 'reported', `${CH}.httpCookie.attributes`, [{ name: 'SameSite', value: 'Strict' }], { base: [[`${CH}.httpCookie.name`, 'user']] }),
  dr('WarmupConfiguration.duration', 'supported', `${LB}.warmup.duration`, '20s', { base: [[`${LB}.warmup.duration`, '10s']] }),
  dr('WarmupConfiguration.minimumPercent', 'supported', `${LB}.warmup.minimumPercent`, { value: 20 }, { base: [[`${LB}.warmup.duration`, '10s']] }),
  dr('WarmupConfiguration.aggression', 'supported', `${LB}.warmup.aggression`, { value: 2 }, { base: [[`${LB}.warmup.duration`, '10s']] }),
  dr('TCPSettings.maxConnections', 'partial', `${TCP}.maxConnections`, 5), // per endpoint in meshlet's pool; caps the requests in flight
  dr('TCPSettings.connectTimeout', 'supported', `${TCP}.connectTimeout`, '1s'),
  dr('TCPSettings.tcpKeepalive', 'reported', `${TCP}.tcpKeepalive`, { time: '10s' }),
  dr('TCPSettings.maxConnectionDuration', 'reported', `${TCP}.maxConnectionDuration`, '1m'),
  dr('TCPSettings.idleTimeout', 'partial', `${TCP}.idleTimeout`, '30s', { reported: '0s' }),
  dr('HTTPSettings.http1MaxPendingRequests', 'supported', `${HTTP}.http1MaxPendingRequests`, 3),
  dr('HTTPSettings.http2MaxRequests', 'supported', `${HTTP}.http2MaxRequests`, 3),
  dr('HTTPSettings.maxRequestsPerConnection', 'reported', `${HTTP}.maxRequestsPerConnection`, 1),
  dr('HTTPSettings.maxRetries', 'supported', `${HTTP}.maxRetries`, 3),
  dr('HTTPSettings.idleTimeout', 'partial', `${HTTP}.idleTimeout`, '30s', { reported: '0s' }),
  dr('HTTPSettings.h2UpgradePolicy', 'reported', `${HTTP}.h2UpgradePolicy`, 'UPGRADE'),
  dr('HTTPSettings.useClientProtocol', 'reported', `${HTTP}.useClientProtocol`, true),
  dr('HTTPSettings.maxConcurrentStreams', 'reported', `${HTTP}.maxConcurrentStreams`, 10),
  dr('HTTPSettings.http2KeepAlive', 'reported', `${HTTP}.http2KeepAlive`, { interval: '10s' }),
  dr('OutlierDetection.consecutiveErrors', 'reported', `${OD}.consecutiveErrors`, 3),
  dr('OutlierDetection.splitExternalLocalOriginErrors', 'supported', `${OD}.splitExternalLocalOriginErrors`, true),
  dr('OutlierDetection.consecutiveLocalOriginFailures', 'supported', `${OD}.consecutiveLocalOriginFailures`, { value: 3 }),
  dr('OutlierDetection.consecutiveGatewayErrors', 'supported', `${OD}.consecutiveGatewayErrors`, { value: 3 }),
  dr('OutlierDetection.consecutive5xxErrors', 'supported', `${OD}.consecutive5xxErrors`, { value: 3 }),
  dr('OutlierDetection.interval', 'supported', `${OD}.interval`, '5s'),
  dr('OutlierDetection.baseEjectionTime', 'supported', `${OD}.baseEjectionTime`, '1m'),
  dr('OutlierDetection.maxEjectionPercent', 'partial', `${OD}.maxEjectionPercent`, 50), // meshlet can always eject one
  dr('OutlierDetection.minHealthPercent', 'supported', `${OD}.minHealthPercent`, 20),
  dr('OutlierDetection.outlierDetectionHttpErrorCodes', 'reported', `${OD}.outlierDetectionHttpErrorCodes`, [500]),
  // ISTIO_MUTUAL is applied (tls mode 'istio-mutual'); an unknown mode is reported, and TLS stays off.
  dr('ClientTLSSettings.mode', 'partial', `${TLS}.mode`, 'SIMPLE', { reported: 'MUTUAL_ISTIO' }),
  dr('ClientTLSSettings.clientCertificate', 'supported', `${TLS}.clientCertificate`, '/other.pem'),
  dr('ClientTLSSettings.privateKey', 'supported', `${TLS}.privateKey`, '/other-key.pem'),
  dr('ClientTLSSettings.caCertificates', 'supported', `${TLS}.caCertificates`, '/ca.pem'),
  dr('ClientTLSSettings.credentialName', 'reported', `${TLS}.credentialName`, 'db-secret'),
  dr('ClientTLSSettings.subjectAltNames', 'supported', `${TLS}.subjectAltNames`, ['spiffe://cluster.local/ns/a/sa/b']),
  dr('ClientTLSSettings.sni', 'supported', `${TLS}.sni`, 'db.example'),
  dr('ClientTLSSettings.insecureSkipVerify', 'supported', `${TLS}.insecureSkipVerify`, { value: true }),
  dr('ClientTLSSettings.caCrl', 'reported', `${TLS}.caCrl`, '/crl.pem'),
  dr('LocalityLoadBalancerSetting.enabled', 'supported', `${LOC}.enabled`, false),
  dr('LocalityLoadBalancerSetting.failoverPriority', 'reported', `${LOC}.failoverPriority`, ['topology.kubernetes.io/zone']),
  dr('Distribute.from', 'partial', `${LOC}.distribute[0].from`, 'us-east/a', { reported: 'us-east/a/sz1' }), // no subzones
  dr('Distribute.to', 'partial', `${LOC}.distribute[0].to`, { 'us-east/a': 100 }, { reported: { 'us-east/a/sz1': 100 } }),
  // A failover rule takes both regions (createMesh refuses one without): the base has both, the value changes one.
  dr('Failover.from', 'supported', `${LOC}.failover[0].from`, 'us-east', { base: [[`${LOC}.failover[0]`, { from: 'us-west', to: 'eu-west' }]] }),
  dr('Failover.to', 'supported', `${LOC}.failover[0].to`, 'eu-west', { base: [[`${LOC}.failover[0]`, { from: 'us-east', to: 'us-west' }]] }),

  // ===== virtual_service.proto =====
  vs('VirtualService.hosts', 'supported', 'hosts', ['r', 'q']),
  vs('VirtualService.gateways', 'supported', 'gateways', ['ingress']), // meshlet is "mesh": a VirtualService for gateways only is left out
  vs('VirtualService.tls', 'reported', 'tls', [{ match: [{ sniHosts: ['r'] }], route: [{ destination: { host: 'r' } }] }]),
  vs('VirtualService.tcp', 'reported', 'tcp', [{ route: [{ destination: { host: 'r' } }] }]),
  vs('VirtualService.exportTo', 'reported', 'exportTo', ['.']),
  vs('HTTPRoute.name', 'supported', `${R}.name`, 'canary'),
  // A route that answers by itself has no `route`: measured as a second route of its own.
  vs('HTTPRoute.redirect', 'supported', 'http[1]', { redirect: { uri: '/v2' } }),
  vs('HTTPRoute.directResponse', 'supported', 'http[1]', { directResponse: { status: 503 } }),
  vs('HTTPRoute.delegate', 'reported', `${R}.delegate`, { name: 'other' }),
  vs('HTTPRoute.rewrite', 'supported', `${R}.rewrite`, { uri: '/v2' }),
  vs('HTTPRoute.timeout', 'supported', `${R}.timeout`, '3s'),
  vs('HTTPRoute.mirror', 'supported', `${R}.mirror`, { host: 'elsewhere' }), // another service of the mesh
  vs('HTTPRoute.mirrors', 'supported', `${R}.mirrors`, [{ destination: { host: 'r', subset: 'v2' } }, { destination: { host: 'elsewhere' } }]), // each copies its share
  vs('HTTPRoute.mirrorPercent', 'supported', `${R}.mirrorPercent`, 50, { base: [[`${R}.mirror`, { host: 'r', subset: 'v2' }]] }),
  vs('HTTPRoute.mirrorPercentage', 'supported', `${R}.mirrorPercentage`, { value: 50 }, { base: [[`${R}.mirror`, { host: 'r', subset: 'v2' }]] }),
  vs('HTTPRoute.corsPolicy', 'reported', `${R}.corsPolicy`, { allowOrigins: [{ exact: 'https://a.example' }] }),
  vs('HTTPRoute.headers', 'supported', `${R}.headers`, { request: { set: { 'x-a': 'b' } } }),
  vs('HTTPMatchRequest.name', 'reported', `${M}.name`, 'm'),
  vs('HTTPMatchRequest.uri', 'supported', `${M}.uri`, { exact: '/x' }),
  vs('HTTPMatchRequest.scheme', 'reported', `${M}.scheme`, { exact: 'https' }),
  vs('HTTPMatchRequest.method', 'supported', `${M}.method`, { exact: 'GET' }),
  vs('HTTPMatchRequest.authority', 'reported', `${M}.authority`, { exact: 'r.example' }),
  vs('HTTPMatchRequest.headers', 'supported', `${M}.headers`, { 'x-a': { exact: 'b' } }),
  vs('HTTPMatchRequest.port', 'reported', `${M}.port`, 8080),
  vs('HTTPMatchRequest.sourceLabels', 'supported', `${M}.sourceLabels`, { app: 'x' }, { source: ME }), // not this process: the block never matches
  vs('HTTPMatchRequest.gateways', 'supported', `${M}.gateways`, ['ingress']),
  vs('HTTPMatchRequest.queryParams', 'supported', `${M}.queryParams`, { q: { exact: '1' } }),
  vs('HTTPMatchRequest.ignoreUriCase', 'supported', `${M}.ignoreUriCase`, true),
  vs('HTTPMatchRequest.withoutHeaders', 'reported', `${M}.withoutHeaders`, { 'x-a': { exact: 'b' } }),
  vs('HTTPMatchRequest.sourceNamespace', 'supported', `${M}.sourceNamespace`, 'shop', { source: ME }),
  vs('HTTPMatchRequest.statPrefix', 'reported', `${M}.statPrefix`, 'p'),
  vs('StringMatch.exact', 'supported', `${M}.headers.x-a`, { exact: 'b' }),
  vs('StringMatch.prefix', 'supported', `${M}.headers.x-a`, { prefix: 'b' }),
  vs('StringMatch.regex', 'supported', `${M}.headers.x-a`, { regex: 'b.*' }), // RE2, matching the whole value
  vs('HTTPRouteDestination.weight', 'supported', `${R}.route[1].weight`, 150),
  vs('HTTPRouteDestination.headers', 'supported', `${R}.route[1].headers`, { request: { set: { 'x-a': 'b' } } }),
  vs('Destination.host', 'supported', `${R}.route[1].destination.host`, 'elsewhere'), // another service of the mesh
  vs('Destination.subset', 'supported', `${R}.route[1].destination.subset`, 'v3'),
  vs('Destination.port', 'supported', `${R}.route[1].destination.port`, { number: 8080 }), // the service of that port (8080.r)
  vs('HTTPRetry.attempts', 'supported', `${R}.retries.attempts`, 3, { base: [[`${R}.retries.attempts`, 1]] }),
  vs('HTTPRetry.perTryTimeout', 'supported', `${R}.retries.perTryTimeout`, '1s', { base: [[`${R}.retries.attempts`, 1]] }),
  vs('HTTPRetry.retryOn', 'partial', `${R}.retries.retryOn`, '5xx', { base: [[`${R}.retries.attempts`, 1]], reported: 'reset-before-request' }), // never a non-idempotent request that may have reached the endpoint
  vs('HTTPRetry.retryRemoteLocalities', 'reported', `${R}.retries.retryRemoteLocalities`, true, { base: [[`${R}.retries.attempts`, 1]] }),
  vs('HTTPRetry.retryIgnorePreviousHosts', 'reported', `${R}.retries.retryIgnorePreviousHosts`, false, { base: [[`${R}.retries.attempts`, 1]] }),
  vs('HTTPRetry.backoff', 'supported', `${R}.retries.backoff`, '100ms', { base: [[`${R}.retries.attempts`, 1]] }),
  vs('Delay.percent', 'supported', `${R}.fault.delay.percent`, 20, { base: [[`${R}.fault.delay.fixedDelay`, '1s']] }),
  vs('Delay.fixedDelay', 'supported', `${R}.fault.delay.fixedDelay`, '2s', { base: [[`${R}.fault.delay.fixedDelay`, '1s'], [`${R}.fault.delay.percentage`, { value: 10 }]] }),
  vs('Delay.exponentialDelay', 'reported', `${R}.fault.delay.exponentialDelay`, '1s', { base: [[`${R}.fault.delay.percentage`, { value: 10 }]] }),
  vs('Delay.percentage', 'supported', `${R}.fault.delay.percentage`, { value: 20 }, { base: [[`${R}.fault.delay.fixedDelay`, '1s']] }),
  vs('Abort.httpStatus', 'supported', `${R}.fault.abort.httpStatus`, 503, { base: [[`${R}.fault.abort.httpStatus`, 500], [`${R}.fault.abort.percentage`, { value: 10 }]] }),
  vs('Abort.grpcStatus', 'reported', `${R}.fault.abort.grpcStatus`, 'UNAVAILABLE', { base: [[`${R}.fault.abort.percentage`, { value: 10 }]] }),
  vs('Abort.http2Error', 'reported', `${R}.fault.abort.http2Error`, 'REFUSED_STREAM', { base: [[`${R}.fault.abort.percentage`, { value: 10 }]] }),
  vs('Abort.percentage', 'supported', `${R}.fault.abort.percentage`, { value: 20 }, { base: [[`${R}.fault.abort.httpStatus`, 500]] }),
  vs('HTTPMirrorPolicy.percentage', 'supported', `${R}.mirrors[0].percentage`, { value: 20 }, { base: [[`${R}.mirrors`, [{ destination: { host: 'r', subset: 'v2' } }]]] }),
];

/** `a.b[0].c-d` → ['a', 'b', 0, 'c-d'] (keys may hold '-'). */
function keys(path: string): (string | number)[] {
  return path.split('.').flatMap((part) => {
    const m = /^([^[]+)((\[\d+\])*)$/.exec(part)!;
    return [m[1]!, ...[...m[2]!.matchAll(/\[(\d+)\]/g)].map((x) => Number(x[1]))];
  });
}

/** A copy of `doc` with the containers on the way to `path` made, and `value` at `path` when given. */
function set(doc: Json, path: string, value?: Json): Json {
  const copy = JSON.parse(JSON.stringify(doc)) as Json;
  const ks = keys(path);
  let at = copy as Record<string | number, Json>;
  ks.slice(0, -1).forEach((k, i) => {
    if (at[k] === undefined || at[k] === null) at[k] = typeof ks[i + 1] === 'number' ? [] : {};
    at = at[k] as Record<string | number, Json>;
  });
  if (value !== undefined) at[ks[ks.length - 1]!] = value;
  return copy;
}

/** The field's document, with `value` at its place or (undefined) without it; the containers on the way are in both. */
function document(f: Field, value: Json | undefined): string {
  let spec = f.kind === 'DestinationRule' ? DR_BASE : VS_BASE;
  for (const [p, v] of f.base ?? []) spec = set(spec, p, v);
  spec = set(spec, f.at, value);
  return toYaml([{ apiVersion: 'networking.istio.io/v1', kind: f.kind, metadata: { name: 'r' }, spec }]);
}

interface Outcome {
  readonly output: string;
  readonly reportedAt: boolean;
}

function run(f: Field, value: Json | undefined): Outcome {
  const { services, unsupported } = fromIstio(document(f, value), { source: f.source ?? UNKNOWN });
  const at = `${f.kind} r: spec.${f.at}`;
  const reportedAt = unsupported.some((u) => u.path === at || u.path.startsWith(`${at}.`) || u.path.startsWith(`${at}[`));
  return { output: JSON.stringify(services), reportedAt };
}

type Measured = Class | 'ignored';

function measure(f: Field): Measured {
  const without = run(f, undefined);
  const withIt = run(f, f.value);
  const changed = withIt.output !== without.output;
  if (withIt.reportedAt) return changed && f.claim === 'partial' ? 'partial' : 'reported';
  if (!changed) return 'ignored';
  return f.claim === 'partial' ? 'partial' : 'supported';
}

describe('every field is applied or reported', () => {
  test.each(FIELDS.map((f) => [f.name, f] as const))('%s', (_name, f) => {
    expect(measure(f)).toBe(f.claim);
    if (f.reported !== undefined) expect(run(f, f.reported).reportedAt, `${f.name}: ${JSON.stringify(f.reported)} is reported`).toBe(true);
  });
});

test('the coverage table: of 125 fields, 78 supported, 11 partially, 36 reported, none ignored', () => {
  const names = FIELDS.map((f) => f.name);
  expect(new Set(names).size).toBe(names.length);
  const counts: Record<Measured, number> = { supported: 0, partial: 0, reported: 0, ignored: 0 };
  for (const f of FIELDS) counts[measure(f)]++;
  expect({ total: FIELDS.length, ...counts }).toEqual({ total: 125, supported: 78, partial: 11, reported: 36, ignored: 0 });
});
