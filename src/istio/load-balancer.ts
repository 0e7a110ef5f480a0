/**
 * A DestinationRule's `loadBalancer`, field by field, as Istio's pilot programs it
 * (pilot/pkg/networking/core/cluster_traffic_policy.go): the simple balancers, consistent hashing,
 * locality settings and warmup — slow start only with ROUND_ROBIN or LEAST_REQUEST (Istio's
 * default), a ring or table size of 0 meaning Envoy's default. A subset's locality and warmup are
 * reported: meshlet has them per service.
 */
import type { BalancerConfig, BalancerName } from '../balancers/config.js';
import { cookieName, cookiePathText, hashName } from '../balancers/config.js';
import { failoverRegions } from '../routing/locality.js';
import type { SlowStartConfig } from '../health/health-config.js';
import type { LocalityLbConfig } from '../routing/locality.js';
import { describe as describeValue } from '../core/endpoint-spec.js';
import type { Doc, Obj } from './doc.js';
import type { Scope } from './traffic-policy.js';
import { isPrime } from '../balancers/maglev.js';
import { MAX_RING } from '../balancers/ring-hash.js';
import { atMost, CAP, durationText, integerIn, istioDuration, longest } from './bounds.js';

const SIMPLE = new Map<unknown, BalancerName>([
  ['ROUND_ROBIN', 'round-robin'],
  ['LEAST_REQUEST', 'least-request'],
  ['LEAST_CONN', 'least-request'],
  ['RANDOM', 'random'],
  ['UNSPECIFIED', 'least-request'], // Istio's default balancer
]);

/** meshlet's smallest maglev table (maglev.ts). */
const MIN_TABLE = 7;

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
  if (warmup?.explicit === false) {
    // Istio does not validate the deprecated warmupDurationSecs: 0 is Envoy's slow start window of
    // 0, which is no slow start.
    const ms = warmup.slowStart.windowMs as number;
    if (ms < 1) {
      doc.unsupported(warmup.path, `no effect: a slow start window of ${durationText(ms)} is no slow start (as in Envoy)`);
      warmup = undefined;
    } else warmup.slowStart.windowMs = longest(ms, CAP.healthMs, doc, warmup.path, 'a slow start window');
  }
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
  // 0: Envoy's default. Envoy takes a ring of up to 8388608 (RingHashLbConfig's minimum_ring_size
  // `lte`), as meshlet does (ring-hash.ts).
  const ringSize = (n: unknown, p: string) => {
    const v = doc.count(n, p, Number.MAX_SAFE_INTEGER); // a uint64
    if (v > MAX_RING) doc.bad(p, `expected a ring size up to ${MAX_RING} (Envoy refuses a larger one), got ${v}`);
    if (v > 0) b.minimumRingSize = v;
  };
  // 0: Envoy's default. Istio's validateLoadBalancer refuses a size from 5000011 and one its isPrime
  // (Envoy's, where 1 is prime) refuses; meshlet's table has at least 7 slots (maglev.ts).
  const tableSize = (n: unknown, p: string) => {
    const v = doc.count(n, p, Number.MAX_SAFE_INTEGER); // a uint64
    if (v >= 5_000_011) doc.bad(p, `expected a table size under 5000011 (Istio refuses a larger one), got ${v}`);
    if (v > 3 && !isPrime(v)) doc.bad(p, `expected a prime table size (Istio refuses another), got ${v}`);
    if (v > 0 && v < MIN_TABLE) doc.unsupported(p, `a table size is at least ${MIN_TABLE} in meshlet: ${v} is applied as ${MIN_TABLE}`);
    if (v > 0) b.tableSize = Math.max(v, MIN_TABLE);
  };
  const named = (x: unknown, p: string): string => {
    const name = doc.str(x, p);
    doc.checked(p, () => hashName(name, p));
    return name;
  };
  doc.fields(o, path, {
    // The names checked as the balancer's hashOn checks them, at the field: createMesh would refuse them later.
    httpHeaderName: (h, hp) => (b.hashOn = { header: named(h, hp) }),
    httpQueryParameterName: (q, qp) => (b.hashOn = { query: named(q, qp) }),
    httpCookie: (c, cp) => {
      // With a ttl, Envoy generates the cookie (a session cookie for 0s) when the request has none.
      const cookie = doc.obj(c, cp);
      const name = named(cookie.name, `${cp}.name`);
      doc.checked(`${cp}.name`, () => cookieName(name, `${cp}.name`));
      const hashOn: Obj = { cookie: name };
      doc.fields(cookie, cp, {
        name: () => {},
        ttl: (t, tp) => {
          const ms = doc.duration(t, tp);
          // Max-Age is in whole seconds: a TTL under 1 s would expire the cookie as it is set.
          if (ms > 0 && ms < 1000) doc.unsupported(tp, `a TTL under 1 s is applied as 1 s (a cookie's Max-Age is in whole seconds), not ${ms} ms`);
          hashOn.ttlMs = ms > 0 && ms < 1000 ? 1000 : atMost(ms, CAP.cookieTtlMs, doc, tp, "a cookie's TTL", durationText);
        },
        path: (x, xp) => {
          const path = doc.str(x, xp);
          if (path !== '') hashOn.path = doc.checked(xp, () => (cookiePathText(path, xp), path));
        },
        attributes: doc.reportAs('meshlet sets Path, Max-Age and HttpOnly on a generated cookie, no other attribute'),
      });
      b.hashOn = hashOn;
    },
    useSourceIp: doc.reportAs('a client-side balancer has one source address: every request would hash alike'),
    minimumRingSize: ringSize,
    ringHash: (r, rp) => doc.fields(doc.obj(r, rp), rp, { minimumRingSize: ringSize }),
    maglev: (m, mp) => {
      b.type = 'maglev';
      doc.fields(doc.obj(m, mp), mp, { tableSize });
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
            // Istio's ValidateLocalityLbSetting: each weight from 1 to 100, adding up to 100.
            e.to = doc.record(t, tp, (w, wp) => integerIn(w, 1, 100, doc, wp, 'a locality weight', "Istio's validation"));
            const total = Object.values(e.to).reduce((a, w) => a + w, 0);
            if (total !== 100) doc.bad(tp, `the locality weights add up to ${total}, not 100 (Istio refuses such a rule)`);
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
        // Both regions, as meshlet's locality balancing requires: told at the one missing.
        const missing = e.from ? `${xp}.to` : `${xp}.from`;
        doc.checked(missing, () => failoverRegions(e.from, e.to, missing));
        return e as { from: string; to: string };
      })),
    failoverPriority: doc.reportAs('failover by endpoint labels is not supported (failover by region is)'),
  });
  return l;
}

function warmupConfig(w: Obj, doc: Doc, path: string): SlowStartConfig {
  const s: Partial<SlowStartConfig> = {};
  doc.fields(w, path, {
    duration: (d, dp) => (s.windowMs = longest(istioDuration(d, doc, dp), CAP.healthMs, doc, dp, 'a slow start window')),
    minimumPercent: (m, mp) => (s.minWeightPercent = doc.percent(m, mp)),
    // Istio's validateLoadBalancer refuses an aggression of 0 or less; meshlet's goes up to 100.
    aggression: (a, ap) => {
      const value = doc.num(doc.wrapped(a, ap), ap);
      if (!(value > 0)) doc.bad(ap, `expected an aggression above 0 (Istio refuses another), got ${value}`);
      s.aggression = atMost(value, CAP.aggression, doc, ap, 'slow start aggression');
    },
  });
  if (s.windowMs === undefined) doc.bad(`${path}.duration`, 'required (Istio refuses a warmup without one)');
  return s as SlowStartConfig;
}
