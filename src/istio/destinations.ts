/**
 * Where a VirtualService route sends its requests, and copies of them: `route` (one destination,
 * or a weighted split) and `mirror`/`mirrors`, for the service of one host.
 *
 * Weights are relative, as Envoy's weighted clusters: each destination gets weight / sum (a
 * missing weight is 0; one destination gets everything), applied in whole percent. A destination
 * may be a subset of the route's own service, the whole service, or another service of the mesh
 * (a host with no document of its own becomes a service too, so `options.discovery` gives it
 * endpoints) or one of its subsets: the request then goes on as Envoy sends it to another
 * cluster (README, "Routing"). Every mirror copies its own share, to this service or another.
 */
import type { MirrorConfig, RouteConfig, SplitDestination } from '../layers/route.js';
import { put, type Doc } from './doc.js';
import type { HostRef, Names } from './names.js';

/** The service a route belongs to. */
export interface Here {
  readonly ref: HostRef;
  readonly host: string;
  readonly names: Names;
  /** The meshlet service another host names, made on first use (services.ts). */
  readonly serviceOf: (ref: HostRef, host: string) => string;
  /** The meshlet service of one port of a host (`9080.reviews`), made on first use. */
  readonly portServiceOf: (ref: HostRef, host: string, port: number) => string;
}

export interface Destination {
  readonly local: boolean;
  readonly host: string;
  /** The meshlet service of a destination that is not local. */
  readonly service: string | undefined;
  readonly subset: string | undefined;
}

export function destination(v: unknown, doc: Doc, path: string, here: Here): Destination {
  const dest = doc.obj(v, path);
  let subset: string | undefined;
  let port: number | undefined;
  doc.fields(dest, path, {
    host: () => {},
    subset: (x, xp) => (subset = doc.str(x, xp)),
    port: (x, xp) => (port = portNumber(x, doc, xp)),
  });
  const ref = here.names.ref(dest.host, doc, `${path}.host`);
  const host = dest.host as string;
  // A port is a service of its own (services.ts), also for this host: the service of that port.
  if (port !== undefined) return { local: false, host, service: here.portServiceOf(ref, host, port), subset };
  const local = here.names.same(ref, here.ref);
  return { local, host, service: local ? undefined : here.serviceOf(ref, host), subset };
}

/** A PortSelector: `{ number }`, 1 to 65535. */
export function portNumber(v: unknown, doc: Doc, path: string): number {
  let n: number | undefined;
  doc.fields(doc.obj(v, path), path, { number: (x, xp) => (n = doc.count(x, xp)) });
  if (n === undefined || n < 1 || n > 65_535) doc.bad(`${path}.number`, `expected a port number from 1 to 65535, got ${n === undefined ? 'none' : n}`);
  return n;
}

/** `route`: where the route sends its requests (`{}` for the whole service), or null when nothing remains to route to. */
export function routeDestinations(
  v: unknown,
  doc: Doc,
  path: string,
  here: Here,
  /** Collects each destination's own `headers` (route-actions.ts decides what they become). */
  headers: { headers: unknown; path: string }[] = [],
): Pick<RouteConfig, 'subset' | 'service' | 'split'> {
  const dests = doc.list(v, path).map((d, i) => {
    const dp = `${path}[${i}]`;
    const o = doc.obj(d, dp);
    let weight = 0;
    doc.fields(o, dp, {
      destination: () => {},
      weight: (w, wp) => (weight = doc.count(w, wp)),
      headers: (h, hp) => headers.push({ headers: h, path: hp }),
    });
    return { ...destination(o.destination, doc, `${dp}.destination`, here), weight };
  });
  if (dests.length === 0) doc.bad(path, 'expected at least one destination');
  // One destination takes everything, whatever its weight; of several, weight 0 takes nothing.
  const total = dests.length === 1 ? 1 : dests.reduce((s, d) => s + d.weight, 0);
  if (total === 0) doc.bad(path, 'the weights add up to 0 (Istio refuses such a route)');
  const taking = dests.length === 1 ? [{ ...dests[0]!, weight: 1 }] : dests.filter((d) => d.weight > 0);
  // Destinations named twice take their weights together.
  const byKey = new Map<string, { service: string | undefined; subset: string | undefined; weight: number }>();
  for (const d of taking) {
    const key = JSON.stringify([d.service ?? null, d.subset ?? null]);
    const had = byKey.get(key);
    if (had) had.weight += d.weight;
    else byKey.set(key, { service: d.service, subset: d.subset, weight: d.weight });
  }
  const groups = [...byKey.values()];
  const one = (g: (typeof groups)[number]) => ({ ...(g.service !== undefined ? { service: g.service } : {}), ...(g.subset !== undefined ? { subset: g.subset } : {}) });
  if (groups.length === 1) return one(groups[0]!);
  const weights = groups.map((g) => g.weight);
  const shares = wholePercent(weights);
  const sum = weights.reduce((a, b) => a + b, 0);
  if (!weights.every((w) => (100 * w) % sum === 0)) doc.unsupported(path, `weights ${weights.join(', ')} are applied as ${shares.join(', ')} %: meshlet splits in whole percent`);
  if (groups.every((g) => g.service === undefined && g.subset !== undefined)) {
    const split: Record<string, number> = {};
    groups.forEach((g, i) => put(split, g.subset!, shares[i]!));
    return { split };
  }
  return { split: groups.map((g, i): SplitDestination => ({ ...one(g), weight: shares[i]! })) };
}

/** Shares of 100 in proportion to `weights`, whole numbers adding up to 100 (largest remainders first). */
export function wholePercent(weights: readonly number[]): number[] {
  const sum = weights.reduce((a, b) => a + b, 0);
  const raw = weights.map((w) => (100 * w) / sum);
  const out = raw.map(Math.floor);
  let left = 100 - out.reduce((a, b) => a + b, 0);
  const order = raw.map((r, i) => ({ i, rest: r - Math.floor(r) })).sort((a, b) => b.rest - a.rest || a.i - b.i);
  for (const { i } of order) {
    if (left <= 0) break;
    out[i]!++;
    left--;
  }
  return out;
}

/** A mirror candidate: where (read), what share. */
export interface MirrorCandidate {
  readonly destination: Destination;
  readonly path: string;
  readonly percent: number;
  /** Where the percentage was given, when apart from the destination (`mirrorPercentage`). */
  readonly percentPath: string | undefined;
}

/** The route's mirrors: each candidate with a share above 0, in this service or another. */
export function mirrorsOf(candidates: readonly MirrorCandidate[]): MirrorConfig[] {
  return candidates
    .filter((c) => c.percent > 0) // Istio: an explicit 0 % mirrors nothing
    .map(({ destination: d, percent }) => ({
      ...(d.service !== undefined ? { service: d.service } : {}),
      ...(d.subset !== undefined ? { subset: d.subset } : {}),
      ...(percent !== 100 ? { percent } : {}),
    }));
}

/** The hosts a VirtualService's routes and mirrors send to (first pass: names.ts learns them too). */
export function destinationHosts(spec: Record<string, unknown>): unknown[] {
  const out: unknown[] = [];
  const hostOf = (d: unknown) => (typeof d === 'object' && d !== null ? out.push((d as { host?: unknown }).host) : undefined);
  if (!Array.isArray(spec.http)) return out;
  for (const r of spec.http as unknown[]) {
    if (typeof r !== 'object' || r === null) continue;
    const route = r as Record<string, unknown>;
    if (Array.isArray(route.route)) for (const d of route.route) hostOf((d as { destination?: unknown } | null)?.destination);
    hostOf(route.mirror);
    if (Array.isArray(route.mirrors)) for (const m of route.mirrors) hostOf((m as { destination?: unknown } | null)?.destination);
  }
  return out;
}
