/** VirtualService → a service's routes (matches, destinations, splits, timeouts, retries, faults, mirrors), field by field. */
import type { ServiceConfig } from '../service/config.js';
import type { RouteConfig } from '../layers/route.js';
import type { RouteMatch, StringMatch } from '../routing/match.js';
import { Doc, isObj, put, serviceOf, type Obj } from './doc.js';
import { directResponse, finishActions, headerOperations, redirect, rewrite } from './route-actions.js';

function stringMatch(v: unknown, doc: Doc, path: string): StringMatch {
  const o = doc.obj(v, path);
  const keys = Object.keys(o);
  if (keys.length !== 1 || !['exact', 'prefix', 'regex'].includes(keys[0]!)) doc.bad(path, 'expected exactly one of exact, prefix, regex');
  return { [keys[0]!]: doc.str(o[keys[0]!], `${path}.${keys[0]!}`) } as StringMatch;
}

/** An empty condition, or Istio's `regex: "*"` (not RE2: Istio reads it as "present"). */
const presence = (x: unknown): boolean => isObj(x) && (Object.keys(x).length === 0 || (Object.keys(x).length === 1 && x.regex === '*'));

function httpMatch(m: Obj, doc: Doc, path: string): RouteMatch {
  const out: RouteMatch = {};
  const table = (v: unknown, p: string): Record<string, StringMatch> =>
    Object.fromEntries(Object.entries(doc.obj(v, p)).map(([k, x]) => [k, presence(x) ? { present: true as const } : stringMatch(x, doc, `${p}.${k}`)]));
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
  let headerAuthority: string | undefined;
  const destinationHeaders: { headers: unknown; path: string }[] = [];
  /** A Destination: whether it is this route's service, and its subset. */
  const destination = (v: unknown, p: string): { ok: boolean; subset: string | undefined } => {
    const dest = doc.obj(v, p);
    const ok = serviceOf(dest.host, doc, `${p}.host`).name === host;
    if (!ok) doc.unsupported(`${p}.host`, `routes to another service ("${dest.host as string}") are not supported: each meshlet route stays within its service`);
    let subset: string | undefined;
    doc.fields(dest, p, {
      host: () => {},
      subset: (x, xp) => (subset = doc.str(x, xp)),
      port: (_x, xp) => doc.unsupported(xp, 'endpoints carry their own port'),
    });
    return { ok, subset };
  };
  doc.fields(r, path, {
    name: (v, p) => (route.name = doc.str(v, p)),
    match: (v, p) => (route.match = doc.list(v, p).map((m, i) => httpMatch(doc.obj(m, `${p}[${i}]`), doc, `${p}[${i}]`))),
    route: (v, p) => {
      const dests = doc.list(v, p).map((d, i) => {
        const dp = `${p}[${i}]`;
        const o = doc.obj(d, dp);
        let weight: number | undefined;
        doc.fields(o, dp, {
          destination: () => {},
          weight: (w, wp) => (weight = doc.num(w, wp)),
          headers: (h, hp) => destinationHeaders.push({ headers: h, path: hp }),
        });
        return { ...destination(o.destination, `${dp}.destination`), weight, path: dp };
      });
      const usable = dests.filter((d) => d.ok);
      if (usable.length === 1 && dests.length === 1) {
        if (usable[0]!.subset !== undefined) route.subset = usable[0]!.subset;
      } else if (usable.length > 1) {
        const split: Record<string, number> = {};
        for (const d of usable) {
          if (d.subset === undefined) doc.bad(`${d.path}.destination.subset`, 'a weighted split in meshlet is between subsets');
          const weight = d.weight ?? doc.bad(`${d.path}.weight`, 'several destinations need weights (adding up to 100)');
          put(split, d.subset, (Object.hasOwn(split, d.subset) ? split[d.subset]! : 0) + weight);
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
        // Envoy's base interval; its maximum is 10 times that.
        backoff: (d, dp) => (retry.backoff = { baseMs: doc.duration(d, dp), maxMs: 10 * doc.duration(d, dp) }),
        retryOn: (s, sp) => {
          const on = new Set<string>();
          const codes: number[] = [];
          for (const c of doc.str(s, sp).split(',').map((x) => x.trim()).filter(Boolean)) {
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
            httpStatus: (x, xp) => (status = doc.num(x, xp)),
            percentage: (x, xp) => (percent = doc.percent(x, xp)),
          });
          if (status !== undefined) fault.abort = { httpStatus: status, percent };
        },
      });
      route.fault = fault;
    },
    mirror: (v, p) => {
      const { ok, subset } = destination(v, p);
      if (ok) route.mirror = { ...route.mirror, ...(subset !== undefined ? { subset } : {}) };
    },
    mirrors: (v, p) => {
      doc.list(v, p).forEach((m, i) => {
        const mp = `${p}[${i}]`;
        if (i > 0) return doc.unsupported(mp, 'meshlet mirrors to one destination per route');
        const o = doc.obj(m, mp);
        let percent = 100;
        doc.fields(o, mp, { destination: () => {}, percentage: (x, xp) => (percent = doc.percent(x, xp)) });
        const { ok, subset } = destination(o.destination, `${mp}.destination`);
        if (ok) route.mirror = { ...(subset !== undefined ? { subset } : {}), percent };
      });
    },
    mirrorPercentage: (v, p) => (route.mirror = { ...route.mirror, percent: doc.percent(v, p) }),
    mirrorPercent: (v, p) => (route.mirror = { ...route.mirror, percent: doc.percent(v, p) }),
    headers: (v, p) => ({ headers: route.headers, authority: headerAuthority } = headerOperations(v, doc, p)),
    rewrite: (v, p) => {
      const rw = rewrite(v, doc, p);
      if (rw !== undefined) route.rewrite = rw;
    },
    redirect: (v, p) => (route.redirect = redirect(v, doc, p)),
    directResponse: (v, p) => (route.directResponse = directResponse(v, doc, p)),
  });
  finishActions(route, r, doc, path, headerAuthority, destinationHeaders);
  return route;
}

export function virtualService(spec: Obj, doc: Doc, services: Map<string, ServiceConfig>, info: Map<string, { namespace?: string; host: string }>): void {
  const hosts = doc.list(spec.hosts, 'spec.hosts');
  doc.fields(spec, 'spec', {
    hosts: () => {},
    http: (v, p) => {
      for (const [hi, host] of hosts.entries()) {
        const { name, namespace, extraHost } = serviceOf(host, doc, `spec.hosts[${hi}]`);
        const svc = services.get(name) ?? {};
        services.set(name, svc);
        if (!info.has(name)) info.set(name, { namespace, host: host as string });
        if (extraHost) svc.hosts = [...new Set([...(svc.hosts ?? []), extraHost])];
        else if (namespace) svc.namespaces = [...new Set([...(svc.namespaces ?? []), namespace])];
        const reportOnce = hi === 0 ? doc : new Doc(doc.label, []);
        svc.routes = [...(svc.routes ?? []), ...doc.list(v, p).map((r, i) => httpRoute(reportOnce.obj(r, `${p}[${i}]`), reportOnce, `${p}[${i}]`, name))];
      }
    },
  });
}
