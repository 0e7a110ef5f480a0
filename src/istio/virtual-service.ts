/**
 * VirtualService → the routes of each of its hosts' services (matches, destinations, splits,
 * timeouts, retries, faults, mirrors; header operations, rewrites, redirects and direct responses
 * in route-actions.ts), field by field. Every host gets the routes, read for that
 * host: a destination is local to one host's service and another service's for the next (a
 * service of its own in the output, made if no document made it). Of several VirtualServices for
 * one host, read in pilot's order (istio.ts), the first's routes apply alone, as a sidecar's; the
 * others are reported.
 */
import type { RouteConfig } from '../layers/route.js';
import type { Doc, Obj } from './doc.js';
import { httpMatches } from './match.js';
import { fault, retries } from './route-policy.js';
import { destination, mirrorsOf, routeDestinations, type Destination, type Here, type MirrorCandidate } from './destinations.js';
import type { ServiceTable } from './services.js';
import type { Identity } from './identity.js';
import { CAP, longest } from './bounds.js';
import { directResponse, finishActions, headerOperations, redirect, rewrite } from './route-actions.js';
import { named } from './rule-merge.js';

/** One `http` route for the service of `here`, or null when it is skipped (reported). */
function httpRoute(r: Obj, doc: Doc, path: string, here: Here, identity: Identity): RouteConfig | null {
  const route: RouteConfig = {};
  let skipped = false;
  let action = false;
  let mirror: { destination: Destination; path: string } | undefined;
  let mirrorShare: { percent: number; path: string; current: boolean } | undefined;
  const mirrors: MirrorCandidate[] = [];
  let headerAuthority: string | undefined;
  const destinationHeaders: { headers: unknown; path: string }[] = [];
  /** An alternative to `route` meshlet does not take: sending the requests on instead would answer them wrongly. */
  const skip = (why: string) => (_v: unknown, p: string) => {
    action = true;
    skipped = true;
    doc.unsupported(p, `${why}: the route is skipped`);
  };
  doc.fields(r, path, {
    name: (v, p) => (route.name = doc.str(v, p)),
    match: (v, p) => {
      const m = httpMatches(v, doc, p, identity);
      if (m === null) skipped = true;
      else if (m.length > 0) route.match = m;
    },
    route: (v, p) => {
      action = true;
      Object.assign(route, routeDestinations(v, doc, p, here, destinationHeaders));
    },
    timeout: (v, p) => (route.timeoutMs = longest(doc.duration(v, p), CAP.timeoutMs, doc, p, 'a route timeout')),
    retries: (v, p) => (route.retry = retries(doc.obj(v, p), doc, p)),
    fault: (v, p) => {
      const f = fault(doc.obj(v, p), doc, p);
      if (f.delay !== undefined || f.abort !== undefined) route.fault = f;
    },
    mirror: (v, p) => (mirror = { destination: destination(v, doc, p, here), path: p }),
    mirrorPercentage: (v, p) => (mirrorShare = { percent: doc.percent(v, p), path: p, current: true }),
    // deprecated: a whole percentage; mirrorPercentage wins
    mirrorPercent: (v, p) => {
      const percent = doc.percent(v, p);
      if (mirrorShare?.current !== true) mirrorShare = { percent, path: p, current: false };
    },
    mirrors: (v, p) =>
      doc.list(v, p).forEach((m, i) => {
        const mp = `${p}[${i}]`;
        let percent = 100;
        let dest: Destination | undefined;
        doc.fields(doc.obj(m, mp), mp, {
          destination: (x, xp) => (dest = destination(x, doc, xp, here)),
          percentage: (x, xp) => (percent = doc.percent(x, xp)),
        });
        if (dest === undefined) doc.bad(`${mp}.destination`, 'required');
        mirrors.push({ destination: dest, path: `${mp}.destination`, percent, percentPath: undefined });
      }),
    headers: (v, p) => ({ headers: route.headers, authority: headerAuthority } = headerOperations(v, doc, p)),
    rewrite: (v, p) => {
      const rw = rewrite(v, doc, p);
      if (rw !== undefined) route.rewrite = rw;
    },
    redirect: (v, p) => {
      action = true;
      route.redirect = redirect(v, doc, p);
    },
    directResponse: (v, p) => {
      action = true;
      route.directResponse = directResponse(v, doc, p);
    },
    delegate: skip('delegating to another VirtualService is not supported'),
  });
  if (!action) doc.bad(path, 'expected route, redirect, directResponse or delegate (Istio refuses a route with none)');
  if (mirrorShare !== undefined && mirror === undefined) doc.unsupported(mirrorShare.path, 'no effect: this route has no mirror');
  const candidates: MirrorCandidate[] = [
    ...(mirror ? [{ ...mirror, percent: mirrorShare?.percent ?? 100, percentPath: mirrorShare?.path }] : []),
    ...mirrors,
  ];
  const [first, ...more] = mirrorsOf(candidates);
  if (first !== undefined) route.mirror = first;
  if (more.length > 0) route.mirrors = more;
  // A redirect or direct response answers alone; a Host set among the headers becomes the rewrite's authority.
  finishActions(route, r, doc, path, headerAuthority, destinationHeaders);
  return skipped ? null : route;
}

/**
 * @param identity this process's, for the routes' source conditions
 * @param routedBy for each service, the VirtualService read first that routes it (as reports name
 *   it); read in pilot's order, a later one's routes come after its, and the overlap is reported
 */
export function virtualService(spec: Obj, doc: Doc, table: ServiceTable, identity: Identity, routedBy: Map<string, string>): void {
  if (spec.hosts === undefined) {
    doc.unsupported('spec', 'a VirtualService without hosts is a delegate, which meshlet does not follow');
    return;
  }
  const hosts = doc.list(spec.hosts, 'spec.hosts');
  // A VirtualService bound to gateways only (no "mesh") does not apply to sidecars, nor to meshlet.
  // An empty list is no list: a protobuf repeated field cannot tell them apart, and pilot binds
  // both to "mesh".
  let forMesh = true;
  doc.fields(spec, 'spec', {
    hosts: () => {},
    gateways: (v, p) => {
      const gateways = doc.list(v, p);
      forMesh = gateways.length === 0 || gateways.includes('mesh');
    },
    http: (v, p) => doc.list(v, p),
    tls: doc.reportAs('TLS routes (by SNI) are not supported: meshlet routes HTTP'),
    tcp: doc.reportAs('TCP routes are not supported: meshlet routes HTTP'),
    exportTo: (v, p) => {
      const to = doc.list(v, p);
      if (!(to.length === 1 && to[0] === '*')) doc.unsupported(p, 'applied for every caller: meshlet does not scope a rule to namespaces');
    },
  });
  if (!forMesh || spec.http === undefined) return;
  const routes = spec.http as unknown[];
  const done = new Set<string>();
  hosts.forEach((host, hi) => {
    const ref = table.names.ref(host, doc, `spec.hosts[${hi}]`);
    const { name } = table.names.of(ref);
    if (done.has(name)) return; // two spellings of one service
    done.add(name);
    const first = routedBy.get(name);
    if (first === undefined) routedBy.set(name, named(doc));
    else {
      // Istio leaves two VirtualServices for one host undefined (istioctl analyze IST0109): a
      // sidecar keeps the virtual host of the first in pilot's order and drops the other's as a
      // duplicate domain (pilot/pkg/networking/core/httproute.go): so does meshlet.
      doc.unsupported(`spec.hosts[${hi}]`, `host ${String(host)} is also routed by ${first}, which comes first (oldest, then by name and namespace): this VirtualService's routes for it are not applied, as a sidecar takes the first's alone (Istio leaves two VirtualServices for one host undefined: istioctl analyze IST0109)`);
      return;
    }
    const svc = table.service(ref, host as string);
    const here: Here = { ref, host: host as string, names: table.names, serviceOf: (r, h) => (table.service(r, h), table.names.of(r).name), portServiceOf: (r, h, port) => table.portService(r, h, port) };
    const converted = routes.map((r, i) => httpRoute(doc.obj(r, `spec.http[${i}]`), doc, `spec.http[${i}]`, here, identity));
    svc.routes = [...(svc.routes ?? []), ...converted.filter((x): x is RouteConfig => x !== null)];
  });
}
