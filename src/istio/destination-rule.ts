/** DestinationRule → a service's balancer, pools, outlier detection, TLS and subsets, field by field. */
import type { ServiceConfig, BalancerConfig } from '../service/config.js';
import type { BalancerName } from '../balancers/config.js';
import type { SubsetConfig } from '../layers/route.js';
import { describe as describeValue } from '../core/endpoint-spec.js';
import { put, serviceOf, type Doc, type Obj } from './doc.js';

const SIMPLE = new Map<unknown, BalancerName>([
  ['ROUND_ROBIN', 'round-robin'],
  ['LEAST_REQUEST', 'least-request'],
  ['LEAST_CONN', 'least-request'],
  ['RANDOM', 'random'],
]);

function loadBalancer(lb: Obj, doc: Doc, path: string, into: { balancer?: BalancerConfig; localityLb?: ServiceConfig['localityLb']; slowStart?: ServiceConfig['slowStart'] }): void {
  doc.fields(lb, path, {
    simple: (v, p) => {
      const balancer = SIMPLE.get(v);
      if (balancer !== undefined) into.balancer = balancer;
      else if (v === 'UNSPECIFIED') return;
      else doc.unsupported(p, `load balancer ${typeof v === 'string' ? `"${v}"` : describeValue(v)} is not supported (PASSTHROUGH needs a proxy)`);
    },
    consistentHash: (v, p) => {
      const b: Obj = { type: 'ring-hash' };
      doc.fields(doc.obj(v, p), p, {
        httpHeaderName: (h, hp) => (b.hashOn = { header: doc.str(h, hp) }),
        httpQueryParameterName: (q, qp) => (b.hashOn = { query: doc.str(q, qp) }),
        httpCookie: (c, cp) => {
          // With a ttl, Envoy generates the cookie (a session cookie for 0s) when the request has none.
          const cookie = doc.obj(c, cp);
          const hashOn: Obj = { cookie: doc.str(cookie.name, `${cp}.name`) };
          doc.fields(cookie, cp, {
            name: () => {},
            ttl: (t, tp) => (hashOn.ttlMs = doc.duration(t, tp)),
            path: (x, xp) => {
              const path = doc.str(x, xp);
              if (path !== '') hashOn.path = path;
            },
            attributes: (_a, ap) => doc.unsupported(ap, 'meshlet sets Path, Max-Age and HttpOnly on a generated cookie, no other attribute'),
          });
          b.hashOn = hashOn;
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
            const e: Partial<NonNullable<typeof l.distribute>[number]> = {};
            doc.fields(doc.obj(x, `${dp}[${i}]`), `${dp}[${i}]`, {
              from: (s, sp) => (e.from = doc.str(s, sp)),
              to: (t, tp) => (e.to = doc.record(t, tp, (w, wp) => doc.num(w, wp))),
            });
            return e as NonNullable<typeof l.distribute>[number];
          })),
        failover: (f, fp) =>
          (l.failover = doc.list(f, fp).map((x, i) => {
            const e: Partial<NonNullable<typeof l.failover>[number]> = {};
            doc.fields(doc.obj(x, `${fp}[${i}]`), `${fp}[${i}]`, {
              from: (s, sp) => (e.from = doc.str(s, sp)),
              to: (s, sp) => (e.to = doc.str(s, sp)),
            });
            return e as NonNullable<typeof l.failover>[number];
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
        aggression: (a, ap) => (s.aggression = doc.wrapped(a, ap)),
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
            http1MaxPendingRequests: (n, np) => (svc.limits = { ...svc.limits, maxPendingRequests: doc.num(n, np) }),
            http2MaxRequests: (n, np) => (svc.limits = { ...svc.limits, maxRequests: doc.num(n, np) }),
          }),
      });
  }
  if (!inSubset) {
    Object.assign(handlers, {
      connectionPool: (v: unknown, p: string) => {
        doc.fields(doc.obj(v, p), p, {
          tcp: (t, tp2) =>
            doc.fields(doc.obj(t, tp2), tp2, {
              maxConnections: (n, np) => (svc.pool = { ...svc.pool, connections: doc.num(n, np) }),
              connectTimeout: (d, dp) => (svc.pool = { ...svc.pool, connectTimeoutMs: doc.duration(d, dp) }),
            }),
          http: (h, hp) =>
            doc.fields(doc.obj(h, hp), hp, {
              http1MaxPendingRequests: (n, np) => (svc.limits = { ...svc.limits, maxPendingRequests: doc.num(n, np) }),
              http2MaxRequests: (n, np) => (svc.limits = { ...svc.limits, maxRequests: doc.num(n, np) }),
              maxRetries: (n, np) => (svc.limits = { ...svc.limits, maxRetries: doc.num(n, np) }),
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
          minHealthPercent: (n, np) => (svc.panicThreshold = doc.num(n, np)),
        });
        svc.outlierDetection = o as ServiceConfig['outlierDetection'];
      },
      tls: (v: unknown, p: string) => {
        const t = doc.obj(v, p);
        const tls: Obj = {};
        let mode = 'SIMPLE';
        doc.fields(t, p, {
          mode: (m, mp) => (mode = doc.str(m, mp)),
          caCertificates: (s) => (tls.ca = s),
          clientCertificate: (s) => (tls.cert = s),
          privateKey: (s) => (tls.key = s),
          sni: (s) => (tls.servername = s),
          subjectAltNames: (s) => (tls.subjectAltNames = s),
          insecureSkipVerify: (b, bp) => (tls.insecureSkipVerify = doc.wrapped(b, bp) === true),
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

export function destinationRule(spec: Obj, doc: Doc, services: Map<string, ServiceConfig>, info: Map<string, { namespace?: string; host: string }>): void {
  const { name, namespace, extraHost } = serviceOf(spec.host, doc, 'spec.host');
  const svc = services.get(name) ?? {};
  services.set(name, svc);
  info.set(name, { namespace, host: spec.host as string });
  if (extraHost) svc.hosts = [...new Set([...(svc.hosts ?? []), extraHost])];
  else if (namespace) svc.namespaces = [...new Set([...(svc.namespaces ?? []), namespace])];
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
          labels: (l, lp) => (subset.labels = doc.record(l, lp, (x, xp) => doc.str(x, xp))),
          trafficPolicy: (t, tp) => {
            const holder: ServiceConfig = {};
            trafficPolicy(doc.obj(t, tp), doc, tp, holder, true);
            if (holder.balancer !== undefined) subset.balancer = holder.balancer;
            if (holder.limits !== undefined) subset.limits = holder.limits;
          },
        });
        if (typeof so.name !== 'string') doc.bad(`${sp}.name`, `expected a subset name, got ${describeValue(so.name)}`);
        if (Object.hasOwn(subsets, so.name)) doc.bad(`${sp}.name`, `subset "${so.name}" is defined twice`);
        put(subsets, so.name, subset);
      });
      svc.subsets = subsets;
    },
  });
}
