/**
 * `fromIstio(yaml)`: Istio DestinationRule and VirtualService documents (networking.istio.io
 * v1, v1beta1, v1alpha3) turned into meshlet service configuration. What maps, and how, is in the
 * README; every field that does not map is reported by path in `unsupported` — never silently
 * dropped — and `{ strict: true }` turns any such report into an error.
 *
 * Notes on meaning: Istio's `connectionPool.tcp.maxConnections` limits connections per cluster and
 * proxy; meshlet's `pool.connections` is per endpoint. Istio's `minHealthPercent` is Envoy's panic
 * threshold, and maps to `panicThreshold`. Durations ("10s", "1.5s", "300ms") become ms.
 *
 * Longer than 400 lines because it is a field-by-field table of two Istio resources; each handler
 * is one line per field, kept together so that a reader can check the mapping against Istio's
 * reference in one pass.
 */
import { parseAllDocuments } from 'yaml';
import type { DiscoveryConfig, ServiceConfig, BalancerConfig } from '../service/config.js';
import type { BalancerName } from '../balancers/config.js';
import { InvalidConfigError } from '../core/errors.js';
import { describe as describeValue } from '../core/endpoint-spec.js';
import { durationMs } from './duration.js';
import type { RouteConfig, SubsetConfig } from '../layers/route.js';
import type { RouteMatch, StringMatch } from '../routing/match.js';

export interface FromIstioOptions {
  /** Where each service's endpoints come from; without it, add `discovery` yourself. */
  discovery?: (service: string, info: { namespace: string | undefined; host: string }) => DiscoveryConfig;
  /** Throw InvalidConfigError listing every unsupported field instead of returning them. */
  strict?: boolean;
}

export interface FromIstioResult {
  services: Record<string, ServiceConfig>;
  /** Fields meshlet does not support, by document and path. */
  unsupported: { path: string; message: string }[];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Walks one document, reporting what it does not take. */
class Doc {
  constructor(
    readonly label: string,
    readonly out: FromIstioResult['unsupported'],
  ) {}

  unsupported(path: string, message = 'not supported by meshlet'): void {
    this.out.push({ path: `${this.label}: ${path}`, message });
  }

  bad(path: string, problem: string): never {
    throw new InvalidConfigError(`${this.label}: ${path}`, problem);
  }

  obj(v: unknown, path: string): Obj {
    if (!isObj(v)) this.bad(path, `expected an object, got ${describeValue(v)}`);
    return v;
  }

  list(v: unknown, path: string): unknown[] {
    if (!Array.isArray(v)) this.bad(path, `expected a list, got ${describeValue(v)}`);
    return v;
  }

  /** Run `handlers[key]` for each key of `o`; report the others. */
  fields(o: Obj, path: string, handlers: Record<string, (v: unknown, p: string) => void>): void {
    for (const [k, v] of Object.entries(o)) {
      const p = path ? `${path}.${k}` : k;
      const h = handlers[k];
      if (h) h(v, p);
      else this.unsupported(p);
    }
  }

  duration(v: unknown, path: string): number {
    const ms = durationMs(v);
    if (ms === undefined) this.bad(path, `expected a duration such as "10s" or "250ms", got ${describeValue(v)}`);
    return ms;
  }

  percent(v: unknown, path: string): number {
    const value = isObj(v) ? v.value : v;
    if (typeof value !== 'number' || value < 0 || value > 100) this.bad(path, `expected a percentage from 0 to 100, got ${describeValue(value)}`);
    return value;
  }
}

function serviceOf(host: unknown, doc: Doc, path: string): { name: string; namespace: string | undefined; extraHost: string | undefined } {
  if (typeof host !== 'string' || host === '' || host.includes('*')) doc.bad(path, `expected a service host (no wildcards), got ${describeValue(host)}`);
  const parts = host.toLowerCase().split('.');
  const name = parts[0]!;
  const k8s = parts.length === 1 || parts.length === 2 || (parts[2] === 'svc' && (parts.length === 3 || parts.slice(3).join('.') === 'cluster.local'));
  return { name, namespace: parts[1], extraHost: k8s ? undefined : host.toLowerCase() };
}

// ===== DestinationRule =====

function loadBalancer(lb: Obj, doc: Doc, path: string, into: { balancer?: BalancerConfig; localityLb?: ServiceConfig['localityLb']; slowStart?: ServiceConfig['slowStart'] }): void {
  doc.fields(lb, path, {
    simple: (v, p) => {
      const map: Record<string, BalancerName> = { ROUND_ROBIN: 'round-robin', LEAST_REQUEST: 'least-request', LEAST_CONN: 'least-request', RANDOM: 'random' };
      if (typeof v === 'string' && map[v]) into.balancer = map[v];
      else if (v === 'UNSPECIFIED') return;
      else doc.unsupported(p, `load balancer ${JSON.stringify(v)} is not supported (PASSTHROUGH needs a proxy)`);
    },
    consistentHash: (v, p) => {
      const b: Obj = { type: 'ring-hash' };
      doc.fields(doc.obj(v, p), p, {
        httpHeaderName: (h) => (b.hashOn = { header: String(h) }),
        httpQueryParameterName: (q) => (b.hashOn = { query: String(q) }),
        httpCookie: (c, cp) => {
          const cookie = doc.obj(c, cp);
          b.hashOn = { cookie: String(cookie.name) };
          for (const k of Object.keys(cookie)) if (k !== 'name') doc.unsupported(`${cp}.${k}`, 'meshlet hashes on an existing cookie; it does not set one');
        },
        useSourceIp: (_x, sp) => doc.unsupported(sp, 'a client-side balancer has one source address: every request would hash alike'),
        minimumRingSize: (n) => (b.minimumRingSize = n),
        ringHash: (r, rp) => doc.fields(doc.obj(r, rp), rp, { minimumRingSize: (n) => (b.minimumRingSize = n) }),
        maglev: (m, mp) => {
          b.type = 'maglev';
          doc.fields(doc.obj(m, mp), mp, { tableSize: (n) => (b.tableSize = n) });
        },
      });
      into.balancer = b as BalancerConfig;
    },
    localityLbSetting: (v, p) => {
      const l: NonNullable<ServiceConfig['localityLb']> = {};
      doc.fields(doc.obj(v, p), p, {
        enabled: (e) => (l.enabled = e !== false),
        distribute: (d, dp) =>
          (l.distribute = doc.list(d, dp).map((x, i) => {
            const o = doc.obj(x, `${dp}[${i}]`);
            return { from: String(o.from), to: o.to as Record<string, number> };
          })),
        failover: (f, fp) =>
          (l.failover = doc.list(f, fp).map((x, i) => {
            const o = doc.obj(x, `${fp}[${i}]`);
            return { from: String(o.from), to: String(o.to) };
          })),
      });
      into.localityLb = l;
    },
    warmupDurationSecs: (v, p) => (into.slowStart = { windowMs: doc.duration(v, p) }),
    warmup: (v, p) => {
      const w = doc.obj(v, p);
      const s: Obj = {};
      doc.fields(w, p, {
        duration: (d, dp) => (s.windowMs = doc.duration(d, dp)),
        minimumPercent: (m, mp) => (s.minWeightPercent = doc.percent(m, mp)),
        aggression: (a, ap) => (s.aggression = isObj(a) ? a.value : a) && void ap,
      });
      into.slowStart = s as unknown as ServiceConfig['slowStart'];
    },
  });
}

function trafficPolicy(tp: Obj, doc: Doc, path: string, svc: ServiceConfig, inSubset: boolean): void {
  const handlers: Record<string, (v: unknown, p: string) => void> = {
    loadBalancer: (v, p) => loadBalancer(doc.obj(v, p), doc, p, svc),
  };
  if (inSubset) {
    // A subset's connection pool: its request limits apply on top of the service's; connection
    // settings belong to the endpoints, which subsets share.
    handlers.connectionPool = (v, p) =>
      doc.fields(doc.obj(v, p), p, {
        http: (h, hp) =>
          doc.fields(doc.obj(h, hp), hp, {
            http1MaxPendingRequests: (n) => (svc.limits = { ...svc.limits, maxPendingRequests: Number(n) }),
            http2MaxRequests: (n) => (svc.limits = { ...svc.limits, maxRequests: Number(n) }),
          }),
      });
  }
  if (!inSubset) {
    Object.assign(handlers, {
      connectionPool: (v: unknown, p: string) => {
        doc.fields(doc.obj(v, p), p, {
          tcp: (t, tp2) =>
            doc.fields(doc.obj(t, tp2), tp2, {
              maxConnections: (n) => (svc.pool = { ...svc.pool, connections: Number(n) }),
              connectTimeout: (d, dp) => (svc.pool = { ...svc.pool, connectTimeoutMs: doc.duration(d, dp) }),
            }),
          http: (h, hp) =>
            doc.fields(doc.obj(h, hp), hp, {
              http1MaxPendingRequests: (n) => (svc.limits = { ...svc.limits, maxPendingRequests: Number(n) }),
              http2MaxRequests: (n) => (svc.limits = { ...svc.limits, maxRequests: Number(n) }),
              maxRetries: (n) => (svc.limits = { ...svc.limits, maxRetries: Number(n) }),
              idleTimeout: (d, dp) => (svc.pool = { ...svc.pool, keepAliveTimeoutMs: doc.duration(d, dp) }),
            }),
        });
      },
      outlierDetection: (v: unknown, p: string) => {
        const o: Obj = {};
        doc.fields(doc.obj(v, p), p, {
          consecutive5xxErrors: (n) => (o.consecutive5xxErrors = n),
          consecutiveErrors: (n) => (o.consecutive5xxErrors = n),
          consecutiveGatewayErrors: (n) => (o.consecutiveGatewayErrors = n),
          consecutiveLocalOriginFailures: (n) => (o.consecutiveLocalOriginFailures = n),
          splitExternalLocalOriginErrors: (b) => (o.splitExternalLocalOriginErrors = b),
          interval: (d, dp) => (o.intervalMs = doc.duration(d, dp)),
          baseEjectionTime: (d, dp) => (o.baseEjectionTimeMs = doc.duration(d, dp)),
          maxEjectionPercent: (n) => (o.maxEjectionPercent = n),
          minHealthPercent: (n) => (svc.panicThreshold = Number(n)),
        });
        svc.outlierDetection = o as ServiceConfig['outlierDetection'];
      },
      tls: (v: unknown, p: string) => {
        const t = doc.obj(v, p);
        const tls: Obj = {};
        let mode = 'SIMPLE';
        doc.fields(t, p, {
          mode: (m) => (mode = String(m)),
          caCertificates: (s) => (tls.ca = s),
          clientCertificate: (s) => (tls.cert = s),
          privateKey: (s) => (tls.key = s),
          sni: (s) => (tls.servername = s),
          subjectAltNames: (s) => (tls.subjectAltNames = s),
          insecureSkipVerify: (b) => (tls.insecureSkipVerify = b === true || (isObj(b) && b.value === true)),
          credentialName: (_s, cp) => doc.unsupported(cp, 'meshlet reads certificates from files or PEM, not Kubernetes secrets'),
        });
        if (mode === 'DISABLE') return;
        if (mode === 'ISTIO_MUTUAL') {
          doc.unsupported(`${p}.mode`, 'ISTIO_MUTUAL needs Istio-issued certificates: give ca, cert and key explicitly (mode MUTUAL)');
          return;
        }
        if (mode === 'MUTUAL' && (tls.cert === undefined || tls.key === undefined)) doc.bad(`${p}`, 'mode MUTUAL needs clientCertificate and privateKey');
        svc.tls = tls as ServiceConfig['tls'];
      },
      retryBudget: (v: unknown, p: string) => {
        const budget: Obj = {};
        doc.fields(doc.obj(v, p), p, { percent: (x, xp) => (budget.percent = doc.percent(x, xp)) });
        svc.retry = { ...(svc.retry || {}), budget } as ServiceConfig['retry'];
      },
    });
  }
  doc.fields(tp, path, handlers);
}

function destinationRule(spec: Obj, doc: Doc, services: Map<string, ServiceConfig>, info: Map<string, { namespace?: string; host: string }>): void {
  const { name, namespace, extraHost } = serviceOf(spec.host, doc, 'spec.host');
  const svc = services.get(name) ?? {};
  services.set(name, svc);
  info.set(name, { namespace, host: String(spec.host) });
  if (extraHost) svc.hosts = [...new Set([...(svc.hosts ?? []), extraHost])];
  doc.fields(spec, 'spec', {
    host: () => {},
    trafficPolicy: (v, p) => trafficPolicy(doc.obj(v, p), doc, p, svc, false),
    subsets: (v, p) => {
      const subsets: Record<string, SubsetConfig<BalancerConfig>> = {};
      doc.list(v, p).forEach((s, i) => {
        const sp = `${p}[${i}]`;
        const so = doc.obj(s, sp);
        const subset: SubsetConfig<BalancerConfig> = { labels: {} };
        doc.fields(so, sp, {
          name: () => {},
          labels: (l, lp) => (subset.labels = doc.obj(l, lp) as Record<string, string>),
          trafficPolicy: (t, tp) => {
            const holder: ServiceConfig = {};
            trafficPolicy(doc.obj(t, tp), doc, tp, holder, true);
            if (holder.balancer !== undefined) subset.balancer = holder.balancer;
            if (holder.limits !== undefined) subset.limits = holder.limits;
          },
        });
        if (typeof so.name !== 'string') doc.bad(`${sp}.name`, 'expected a subset name');
        subsets[so.name] = subset;
      });
      svc.subsets = subsets;
    },
  });
}

// ===== VirtualService =====

function stringMatch(v: unknown, doc: Doc, path: string): StringMatch {
  const o = doc.obj(v, path);
  const keys = Object.keys(o);
  if (keys.length !== 1 || !['exact', 'prefix', 'regex'].includes(keys[0]!)) doc.bad(path, 'expected exactly one of exact, prefix, regex');
  return { [keys[0]!]: String(o[keys[0]!]) } as StringMatch;
}

function httpMatch(m: Obj, doc: Doc, path: string): RouteMatch {
  const out: RouteMatch = {};
  const table = (v: unknown, p: string): Record<string, StringMatch> =>
    Object.fromEntries(Object.entries(doc.obj(v, p)).map(([k, x]) => [k, isObj(x) && Object.keys(x).length === 0 ? { present: true as const } : stringMatch(x, doc, `${p}.${k}`)]));
  doc.fields(m, path, {
    name: () => {},
    uri: (v, p) => (out.uri = stringMatch(v, doc, p)),
    method: (v, p) => (out.method = stringMatch(v, doc, p)),
    headers: (v, p) => (out.headers = table(v, p)),
    queryParams: (v, p) => (out.queryParams = table(v, p)),
  });
  return out;
}

function httpRoute(r: Obj, doc: Doc, path: string, host: string): RouteConfig {
  const route: RouteConfig = {};
  const sameHost = (dest: Obj, p: string): boolean => {
    const h = serviceOf(dest.host, doc, `${p}.host`).name;
    if (h !== host) {
      doc.unsupported(`${p}.host`, `routes to another service ("${String(dest.host)}") are not supported: each meshlet route stays within its service`);
      return false;
    }
    if (dest.port !== undefined) doc.unsupported(`${p}.port`, 'endpoints carry their own port');
    return true;
  };
  doc.fields(r, path, {
    name: (v) => (route.name = String(v)),
    match: (v, p) => (route.match = doc.list(v, p).map((m, i) => httpMatch(doc.obj(m, `${p}[${i}]`), doc, `${p}[${i}]`))),
    route: (v, p) => {
      const dests = doc.list(v, p).map((d, i) => {
        const dp = `${p}[${i}]`;
        const o = doc.obj(d, dp);
        for (const k of Object.keys(o)) if (k !== 'destination' && k !== 'weight') doc.unsupported(`${dp}.${k}`);
        const dest = doc.obj(o.destination, `${dp}.destination`);
        return { ok: sameHost(dest, `${dp}.destination`), subset: dest.subset as string | undefined, weight: o.weight as number | undefined, path: dp };
      });
      const usable = dests.filter((d) => d.ok);
      if (usable.length === 1 && dests.length === 1) {
        if (usable[0]!.subset !== undefined) route.subset = usable[0]!.subset;
      } else if (usable.length > 1) {
        const split: Record<string, number> = {};
        for (const d of usable) {
          if (d.subset === undefined) doc.bad(`${d.path}.destination.subset`, 'a weighted split in meshlet is between subsets');
          split[d.subset] = (split[d.subset] ?? 0) + (d.weight ?? doc.bad(`${d.path}.weight`, 'several destinations need weights (adding up to 100)'));
        }
        route.split = split;
      }
    },
    timeout: (v, p) => (route.timeoutMs = doc.duration(v, p)),
    retries: (v, p) => {
      const retry: Obj = {};
      doc.fields(doc.obj(v, p), p, {
        attempts: (n) => (retry.attempts = n),
        perTryTimeout: (d, dp) => (retry.perTryTimeoutMs = doc.duration(d, dp)),
        retryOn: (s, sp) => {
          const on = new Set<string>();
          const codes: number[] = [];
          for (const c of String(s).split(',').map((x) => x.trim()).filter(Boolean)) {
            if (/^\d{3}$/.test(c)) {
              codes.push(Number(c));
              on.add('retriable-status-codes');
            } else if (['5xx', 'gateway-error', 'reset', 'connect-failure', 'retriable-status-codes'].includes(c)) on.add(c);
            else if (c === 'refused-stream') on.add('connect-failure');
            else doc.unsupported(`${sp}`, `retry condition "${c}" is not supported`);
          }
          retry.retryOn = [...on];
          if (codes.length) retry.retriableStatusCodes = codes;
        },
      });
      route.retry = retry as RouteConfig['retry'];
    },
    fault: (v, p) => {
      const fault: NonNullable<RouteConfig['fault']> = {};
      doc.fields(doc.obj(v, p), p, {
        delay: (d, dp) => {
          const o = doc.obj(d, dp);
          let percent = 100;
          let ms: number | undefined;
          doc.fields(o, dp, {
            fixedDelay: (x, xp) => (ms = doc.duration(x, xp)),
            percentage: (x, xp) => (percent = doc.percent(x, xp)),
            percent: (x, xp) => (percent = doc.percent(x, xp)),
          });
          if (ms !== undefined) fault.delay = { fixedDelayMs: ms, percent };
        },
        abort: (a, ap) => {
          const o = doc.obj(a, ap);
          let percent = 100;
          let status: number | undefined;
          doc.fields(o, ap, {
            httpStatus: (x) => (status = Number(x)),
            percentage: (x, xp) => (percent = doc.percent(x, xp)),
          });
          if (status !== undefined) fault.abort = { httpStatus: status, percent };
        },
      });
      route.fault = fault;
    },
    mirror: (v, p) => {
      const dest = doc.obj(v, p);
      if (sameHost(dest, p)) route.mirror = { ...route.mirror, ...(dest.subset ? { subset: String(dest.subset) } : {}) };
    },
    mirrors: (v, p) => {
      doc.list(v, p).forEach((m, i) => {
        const mp = `${p}[${i}]`;
        if (i > 0) return doc.unsupported(mp, 'meshlet mirrors to one destination per route');
        const o = doc.obj(m, mp);
        const dest = doc.obj(o.destination, `${mp}.destination`);
        if (!sameHost(dest, `${mp}.destination`)) return;
        route.mirror = { ...(dest.subset ? { subset: String(dest.subset) } : {}), percent: o.percentage === undefined ? 100 : doc.percent(o.percentage, `${mp}.percentage`) };
      });
    },
    mirrorPercentage: (v, p) => (route.mirror = { ...route.mirror, percent: doc.percent(v, p) }),
    mirrorPercent: (v, p) => (route.mirror = { ...route.mirror, percent: doc.percent(v, p) }),
  });
  return route;
}

function virtualService(spec: Obj, doc: Doc, services: Map<string, ServiceConfig>, info: Map<string, { namespace?: string; host: string }>): void {
  const hosts = doc.list(spec.hosts, 'spec.hosts');
  doc.fields(spec, 'spec', {
    hosts: () => {},
    http: (v, p) => {
      for (const [hi, host] of hosts.entries()) {
        const { name, namespace, extraHost } = serviceOf(host, doc, `spec.hosts[${hi}]`);
        const svc = services.get(name) ?? {};
        services.set(name, svc);
        if (!info.has(name)) info.set(name, { namespace, host: String(host) });
        if (extraHost) svc.hosts = [...new Set([...(svc.hosts ?? []), extraHost])];
        const reportOnce = hi === 0 ? doc : new Doc(doc.label, []);
        svc.routes = [...(svc.routes ?? []), ...doc.list(v, p).map((r, i) => httpRoute(reportOnce.obj(r, `${p}[${i}]`), reportOnce, `${p}[${i}]`, name))];
      }
    },
  });
}

/**
 * Convert Istio DestinationRule and VirtualService YAML into meshlet services.
 * @throws InvalidConfigError on malformed documents (with the document and path), or on any
 *   unsupported field when `strict` is set.
 */
export function fromIstio(yamlText: string, options: FromIstioOptions = {}): FromIstioResult {
  const unsupported: FromIstioResult['unsupported'] = [];
  const services = new Map<string, ServiceConfig>();
  const info = new Map<string, { namespace?: string; host: string }>();
  const docs = parseAllDocuments(yamlText);
  docs.forEach((d, i) => {
    if (d.errors.length > 0) throw new InvalidConfigError(`document ${i + 1}`, `not valid YAML: ${d.errors[0]!.message}`);
    const raw = d.toJS() as unknown;
    if (raw == null) return;
    if (!isObj(raw)) throw new InvalidConfigError(`document ${i + 1}`, 'expected a Kubernetes object');
    const kind = String(raw.kind);
    const meta = isObj(raw.metadata) ? raw.metadata : {};
    const doc = new Doc(`${kind} ${String(meta.name ?? `#${i + 1}`)}`, unsupported);
    if (!/^networking\.istio\.io\/(v1|v1beta1|v1alpha3)$/.test(String(raw.apiVersion))) {
      doc.unsupported('apiVersion', `${String(raw.apiVersion)} is not a networking.istio.io version meshlet reads`);
      return;
    }
    const spec = doc.obj(raw.spec, 'spec');
    if (kind === 'DestinationRule') destinationRule(spec, doc, services, info);
    else if (kind === 'VirtualService') virtualService(spec, doc, services, info);
    else doc.unsupported('kind', `${kind} is not supported (DestinationRule and VirtualService are)`);
  });
  const out: Record<string, ServiceConfig> = {};
  for (const [name, svc] of services) {
    const i = info.get(name)!;
    out[name] = options.discovery ? { discovery: options.discovery(name, { namespace: i.namespace, host: i.host }), ...svc } : svc;
  }
  if (options.strict && unsupported.length > 0) {
    throw new InvalidConfigError('fromIstio', `unsupported fields: ${unsupported.map((u) => `${u.path} (${u.message})`).join('; ')}`);
  }
  return { services: out, unsupported };
}
