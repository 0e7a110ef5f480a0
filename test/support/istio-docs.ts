/**
 * Valid Istio documents as data, touching every table of the reader (DestinationRule: load
 * balancer, locality, warmup, pools, outlier detection, TLS, retry budget, subsets; VirtualService:
 * match, weighted destinations, timeout, retries, fault, mirror and mirrors, headers, rewrite,
 * redirect, directResponse), and helpers to plant
 * a key anywhere in them. fromIstio reports nothing for these as they are.
 */
import { stringify } from 'yaml';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type Path = readonly (string | number)[];

const api = 'networking.istio.io/v1';

export function baseDocs(): Json[] {
  return [
    {
      apiVersion: api,
      kind: 'DestinationRule',
      metadata: { name: 'r' },
      spec: {
        host: 'r',
        trafficPolicy: {
          loadBalancer: {
            simple: 'ROUND_ROBIN',
            localityLbSetting: { enabled: true, failover: [{ from: 'us-east', to: 'eu-west' }] },
            warmup: { duration: '10s', minimumPercent: { value: 10 }, aggression: { value: 1 } },
          },
          connectionPool: { tcp: { maxConnections: 10, connectTimeout: '1s' }, http: { http2MaxRequests: 100, maxRetries: 3 } },
          outlierDetection: { consecutive5xxErrors: 5, interval: '10s' },
          tls: { mode: 'SIMPLE', sni: 'r.example' },
          retryBudget: { percent: { value: 20 } },
        },
        subsets: [
          { name: 'v1', labels: { version: 'v1' }, trafficPolicy: { loadBalancer: { simple: 'RANDOM' }, connectionPool: { http: { http2MaxRequests: 5 } } } },
          { name: 'v2', labels: { version: 'v2' } },
        ],
      },
    },
    {
      apiVersion: api,
      kind: 'DestinationRule',
      metadata: { name: 'h' },
      spec: {
        host: 'h',
        trafficPolicy: {
          loadBalancer: {
            consistentHash: { httpCookie: { name: 'user', ttl: '60s', path: '/' }, ringHash: { minimumRingSize: 1024 } },
            localityLbSetting: { distribute: [{ from: 'us-east/a', to: { 'us-east/a': 80, 'us-east/b': 20 } }] },
          },
        },
      },
    },
    {
      apiVersion: api,
      kind: 'VirtualService',
      metadata: { name: 'r' },
      spec: {
        hosts: ['r'],
        http: [
          {
            name: 'canary',
            match: [{ uri: { prefix: '/' }, headers: { 'x-user': { exact: 'jason' } }, queryParams: { debug: {} } }],
            route: [
              { destination: { host: 'r', subset: 'v1' }, weight: 90 },
              { destination: { host: 'r', subset: 'v2' }, weight: 10 },
            ],
            timeout: '2s',
            retries: { attempts: 2, perTryTimeout: '1s', retryOn: '5xx,503' },
            fault: { delay: { fixedDelay: '1s', percentage: { value: 1 } }, abort: { httpStatus: 503, percentage: { value: 1 } } },
            mirror: { host: 'r', subset: 'v2' },
            mirrorPercentage: { value: 5 },
          },
          { route: [{ destination: { host: 'r', subset: 'v1' } }], mirrors: [{ destination: { host: 'r', subset: 'v2' }, percentage: { value: 5 } }] },
          { match: [{ uri: { prefix: '/old/' } }], redirect: { uri: '/new/', authority: 'r.example', scheme: 'https', port: 8443, redirectCode: 302 } },
          { match: [{ uri: { exact: '/gone' } }], directResponse: { status: 410, body: { string: 'gone' } }, headers: { response: { set: { 'x-gone': '1' } } } },
          {
            match: [{ uri: { prefix: '/re/' } }],
            rewrite: { uriRegexRewrite: { match: '^/re/(.*)$', rewrite: '/\\1' }, authority: 'r.internal' },
            headers: { request: { set: { 'x-env': 'prod' }, add: { 'x-trace': 'mesh' }, remove: ['x-debug'] }, response: { remove: ['x-internal'] } },
            retries: { attempts: 1, backoff: '50ms' },
            route: [{ destination: { host: 'r', subset: 'v1' } }],
          },
          { match: [{ uri: { prefix: '/d/' } }], rewrite: { uri: '/' }, route: [{ destination: { host: 'r', subset: 'v2' }, headers: { response: { add: { 'x-d': '1' } } } }] },
        ],
      },
    },
  ];
}

/** The label fromIstio gives each of {@link baseDocs}, by index. */
export const LABELS = ['DestinationRule r', 'DestinationRule h', 'VirtualService r'];

const NOT_FIELDS = ['metadata', 'labels', 'headers', 'queryParams', 'to', 'uri', 'set', 'add'];

/** Every object inside `v` (the root included) whose keys are Istio fields, as a path from `v`. */
export function objectPaths(v: Json, path: Path = []): Path[] {
  if (Array.isArray(v)) return v.flatMap((x, i) => objectPaths(x, [...path, i]));
  if (v === null || typeof v !== 'object') return [];
  // Not the root (its other keys are Kubernetes', not read) nor maps of names (labels, headers,
  // localities) and string conditions, whose keys are not fields.
  const last = String(path[path.length - 1]);
  const parent = String(path[path.length - 2]);
  const fields = path.length > 0 && !NOT_FIELDS.includes(last) && parent !== 'headers' && parent !== 'queryParams';
  return [...(fields ? [path] : []), ...Object.entries(v).flatMap(([k, x]) => objectPaths(x, [...path, k]))];
}

/** Istio's way of writing a path: `spec.http[0].route`. */
export function pathText(path: Path): string {
  return path.reduce<string>((s, k) => (typeof k === 'number' ? `${s}[${k}]` : s ? `${s}.${k}` : k), '');
}

/** A deep copy of `doc` with `key: value` set (as an own key, `__proto__` included) at `path`. */
export function withKey(doc: Json, path: Path, key: string, value: Json): Json {
  const copy = JSON.parse(JSON.stringify(doc)) as Json;
  let at: Json = copy;
  for (const k of path) at = (at as Record<string | number, Json>)[k]!;
  Object.defineProperty(at, key, { value, enumerable: true, writable: true, configurable: true });
  return copy;
}

export function toYaml(docs: readonly Json[]): string {
  return docs.map((d) => stringify(d)).join('---\n');
}
