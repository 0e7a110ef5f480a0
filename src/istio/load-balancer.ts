/**
 * A DestinationRule's `loadBalancer`, field by field, as Istio's pilot programs it
 * (pilot/pkg/networking/core/cluster_traffic_policy.go): the simple balancers, consistent hashing,
 * locality settings and warmup — slow start only with ROUND_ROBIN or LEAST_REQUEST (Istio's
 * default), a ring or table size of 0 meaning Envoy's default. A subset's locality and warmup are
 * reported: meshlet has them per service.
 */
import type { BalancerConfig, BalancerName } from '../balancers/config.js';
import type { SlowStartConfig } from '../health/health-config.js';
import type { LocalityLbConfig } from '../routing/locality.js';
import { describe as describeValue } from '../core/endpoint-spec.js';
import { UINT32_MAX, type Doc, type Obj } from './doc.js';
import type { Scope } from './traffic-policy.js';

const SIMPLE = new Map<unknown, BalancerName>([
  ['ROUND_ROBIN', 'round-robin'],
  ['LEAST_REQUEST', 'least-request'],
  ['LEAST_CONN', 'least-request'],
  ['RANDOM', 'random'],
  ['UNSPECIFIED', 'least-request'], // Istio's default balancer
]);

const PER_SERVICE = (what: string): string => `meshlet's ${what} is the service's: a subset cannot have its own`;

export interface LoadBalancerRead {
  balancer?: BalancerConfig;
  localityLb?: LocalityLbConfig;
  slowStart?: SlowStartConfig;
}

export function loadBalancer(lb: Obj, doc: Doc, path: string, scope: Scope): LoadBalancerRead {
  const out: LoadBalancerRead = {};
  let warmup: { slowStart: SlowStartConfig; path: string; explicit: boolean } | undefined;
  const perService = (what: string) => (scope === 'subset' ? doc.reportAs(PER_SERVICE(what)) : undefined);
  doc.fields(lb, path, {
    simple: (v, p) => {
      const balancer = SIMPLE.get(v);
      if (balancer !== undefined) out.balancer = balancer;
      else doc.unsupported(p, `load balancer ${typeof v === 'string' ? `"${v}"` : describeValue(v)} is not supported (PASSTHROUGH needs a proxy)`);
    },
    consistentHash: (v, p) => (out.balancer = consistentHash(doc.obj(v, p), doc, p)),
    localityLbSetting: perService('locality balancing') ?? ((v, p) => (out.localityLb = localityLbSetting(doc.obj(v, p), doc, p))),
    zoneAwareLbSetting: doc.reportAs('Envoy zone-aware routing is not supported (localityLbSetting is)'),
    warmupDurationSecs:
      perService('slow start') ??
      ((v, p) => {
        if (warmup?.explicit !== true) warmup = { slowStart: { windowMs: doc.duration(v, p) }, path: p, explicit: false };
      }),
    warmup: perService('slow start') ?? ((v, p) => (warmup = { slowStart: warmupConfig(doc.obj(v, p), doc, p), path: p, explicit: true })),
  });
  if (warmup !== undefined) {
    // Istio programs slow start only into ROUND_ROBIN and LEAST_REQUEST (its default).
    const b = out.balancer;
    if (b === undefined || b === 'round-robin' || b === 'least-request') out.slowStart = warmup.slowStart;
    else doc.unsupported(warmup.path, 'Istio applies warmup only with ROUND_ROBIN or LEAST_REQUEST: with this balancer it has no effect there either');
  }
  return out;
}

function consistentHash(o: Obj, doc: Doc, path: string): BalancerConfig {
  const b: Obj = { type: 'ring-hash' };
  const size = (key: string) => (n: unknown, p: string) => {
    const v = doc.count(n, p, Number.MAX_SAFE_INTEGER); // uint64 (sizes past meshlet's bound are refused where the balancer is read)
    if (v > 0) b[key] = v; // 0: Envoy's default
  };
  doc.fields(o, path, {
    httpHeaderName: (h, hp) => (b.hashOn = { header: doc.str(h, hp) }),
    httpQueryParameterName: (q, qp) => (b.hashOn = { query: doc.str(q, qp) }),
    httpCookie: (c, cp) => {
      // With a ttl, Envoy generates the cookie (a session cookie for 0s) when the request has none.
      const cookie = doc.obj(c, cp);
      const hashOn: Obj = { cookie: doc.str(cookie.name, `${cp}.name`) };
      doc.fields(cookie, cp, {
        name: () => {},
        ttl: (t, tp) => {
          const ms = doc.duration(t, tp);
          // Max-Age is in whole seconds: a TTL under 1 s would expire the cookie as it is set.
          if (ms > 0 && ms < 1000) doc.unsupported(tp, `a TTL under 1 s is applied as 1 s (a cookie's Max-Age is in whole seconds), not ${ms} ms`);
          hashOn.ttlMs = ms > 0 && ms < 1000 ? 1000 : ms;
        },
        path: (x, xp) => {
          const path = doc.str(x, xp);
          if (path !== '') hashOn.path = path;
        },
        attributes: doc.reportAs('meshlet sets Path, Max-Age and HttpOnly on a generated cookie, no other attribute'),
      });
      b.hashOn = hashOn;
    },
    useSourceIp: doc.reportAs('a client-side balancer has one source address: every request would hash alike'),
    minimumRingSize: size('minimumRingSize'),
    ringHash: (r, rp) => doc.fields(doc.obj(r, rp), rp, { minimumRingSize: size('minimumRingSize') }),
    maglev: (m, mp) => {
      b.type = 'maglev';
      doc.fields(doc.obj(m, mp), mp, { tableSize: size('tableSize') });
    },
  });
  return b as BalancerConfig;
}

function localityLbSetting(o: Obj, doc: Doc, path: string): LocalityLbConfig {
  const l: LocalityLbConfig = {};
  const locality = (s: unknown, sp: string): string => {
    const text = doc.str(s, sp);
    const [, , subzone] = text.split('/');
    if (subzone !== undefined && subzone !== '*') doc.unsupported(sp, `meshlet knows regions and zones, not subzones: "${text}" is read as its region and zone`);
    return text;
  };
  doc.fields(o, path, {
    enabled: (e, ep) => (l.enabled = doc.bool(e, ep)),
    distribute: (d, dp) =>
      (l.distribute = doc.list(d, dp).map((x, i) => {
        const xp = `${dp}[${i}]`;
        const e: { from?: string; to?: Record<string, number> } = {};
        doc.fields(doc.obj(x, xp), xp, {
          from: (s, sp) => (e.from = locality(s, sp)),
          to: (t, tp) => {
            e.to = doc.record(t, tp, (w, wp) => doc.count(w, wp, UINT32_MAX));
            for (const k of Object.keys(e.to)) locality(k, `${tp}.${k}`);
          },
        });
        return e as { from: string; to: Record<string, number> };
      })),
    failover: (f, fp) =>
      (l.failover = doc.list(f, fp).map((x, i) => {
        const xp = `${fp}[${i}]`;
        const e: { from?: string; to?: string } = {};
        doc.fields(doc.obj(x, xp), xp, { from: (s, sp) => (e.from = doc.str(s, sp)), to: (s, sp) => (e.to = doc.str(s, sp)) });
        return e as { from: string; to: string };
      })),
    failoverPriority: doc.reportAs('failover by endpoint labels is not supported (failover by region is)'),
  });
  return l;
}

function warmupConfig(w: Obj, doc: Doc, path: string): SlowStartConfig {
  const s: Partial<SlowStartConfig> = {};
  doc.fields(w, path, {
    duration: (d, dp) => (s.windowMs = doc.duration(d, dp)),
    minimumPercent: (m, mp) => (s.minWeightPercent = doc.percent(m, mp)),
    aggression: (a, ap) => (s.aggression = doc.num(doc.wrapped(a, ap), ap)),
  });
  if (s.windowMs === undefined) doc.bad(`${path}.duration`, 'required (Istio refuses a warmup without one)');
  return s as SlowStartConfig;
}
