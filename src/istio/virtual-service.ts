/** VirtualService → a service's routes (matches, destinations, splits, timeouts, retries, faults, mirrors), field by field. */
import type { ServiceConfig } from '../service/config.js';
import type { RouteConfig } from '../layers/route.js';
import type { RouteMatch, StringMatch } from '../routing/match.js';
import { Doc, isObj, serviceOf, type Obj } from './doc.js';

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

export function virtualService(spec: Obj, doc: Doc, services: Map<string, ServiceConfig>, info: Map<string, { namespace?: string; host: string }>): void {
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
        else if (namespace) svc.namespaces = [...new Set([...(svc.namespaces ?? []), namespace])];
        const reportOnce = hi === 0 ? doc : new Doc(doc.label, []);
        svc.routes = [...(svc.routes ?? []), ...doc.list(v, p).map((r, i) => httpRoute(reportOnce.obj(r, `${p}[${i}]`), reportOnce, `${p}[${i}]`, name))];
      }
    },
  });
}
