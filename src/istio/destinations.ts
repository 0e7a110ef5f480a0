/**
 * Where a VirtualService route sends its requests, and copies of them: `route` (one destination,
 * or a weighted split) and `mirror`/`mirrors`, for the service of one host.
 *
 * Weights are relative, as Envoy's weighted clusters: each destination gets weight / sum (a
 * missing weight is 0; one destination gets everything). meshlet splits between subsets of the
 * route's own service, in whole percent. What it cannot send to — another service, or the whole
 * service beside subsets — is reported, and its share goes to the destinations that remain in
 * proportion to their weights (their shares relative to each other are kept). A route left with no
 * destination is skipped.
 */
import type { MirrorConfig } from '../layers/mirror-config.js';
import { put, type Doc, type Obj } from './doc.js';
import type { HostRef, Names } from './names.js';

/** The service a route belongs to. */
export interface Here {
  readonly ref: HostRef;
  readonly host: string;
  readonly names: Names;
}

export interface Destination {
  readonly local: boolean;
  readonly host: string;
  readonly subset: string | undefined;
}

export function destination(v: unknown, doc: Doc, path: string, here: Here): Destination {
  const dest = doc.obj(v, path);
  let subset: string | undefined;
  doc.fields(dest, path, {
    host: () => {},
    subset: (x, xp) => (subset = doc.str(x, xp)),
    port: doc.reportAs('endpoints carry their own port'),
  });
  const local = here.names.same(here.names.ref(dest.host, doc, `${path}.host`), here.ref);
  return { local, host: dest.host as string, subset };
}

const OTHER_SERVICE = 'another service, which meshlet cannot route to from here';

/** `route`: `{ subset }` or `{ split }` (`{}` for the whole service), or null when nothing remains to route to. */
export function routeDestinations(
  v: unknown,
  doc: Doc,
  path: string,
  here: Here,
  /** Collects each destination's own `headers` (route-actions.ts decides what they become). */
  headers: { headers: unknown; path: string }[] = [],
): { subset?: string; split?: Record<string, number> } | null {
  const dests = doc.list(v, path).map((d, i) => {
    const dp = `${path}[${i}]`;
    const o = doc.obj(d, dp);
    let weight = 0;
    doc.fields(o, dp, {
      destination: () => {},
      weight: (w, wp) => (weight = doc.count(w, wp)),
      headers: (h, hp) => headers.push({ headers: h, path: hp }),
    });
    return { ...destination(o.destination, doc, `${dp}.destination`, here), weight, path: dp };
  });
  if (dests.length === 0) doc.bad(path, 'expected at least one destination');
  // One destination takes everything, whatever its weight; of several, weight 0 takes nothing.
  const total = dests.length === 1 ? 1 : dests.reduce((s, d) => s + d.weight, 0);
  if (total === 0) doc.bad(path, 'the weights add up to 0 (Istio refuses such a route)');
  const taking = dests.length === 1 ? [{ ...dests[0]!, weight: 1 }] : dests.filter((d) => d.weight > 0);
  const pct = (w: number): string => `${+((100 * w) / total).toFixed(2)} %`;
  const onlyWhole = taking.every((d) => !d.local || d.subset === undefined);
  const kept = taking.filter((d) => d.local && (d.subset !== undefined || onlyWhole));
  const skip = kept.length === 0;
  for (const d of taking) {
    if (kept.includes(d)) continue;
    const why = d.local ? 'the whole service, beside subsets: meshlet splits between subsets' : `"${d.host}", ${OTHER_SERVICE}`;
    const p = d.local ? `${d.path}.destination` : `${d.path}.destination.host`;
    doc.unsupported(p, `${pct(d.weight)} of this route's requests go to ${why}; ${skip ? 'the route is skipped' : "they go to the route's other destinations, in proportion to their weights"}`);
  }
  if (skip) return null;
  const bySubset = new Map<string, number>();
  for (const d of kept) if (d.subset !== undefined) bySubset.set(d.subset, (bySubset.get(d.subset) ?? 0) + d.weight);
  if (bySubset.size === 0) return {};
  if (bySubset.size === 1) return { subset: [...bySubset.keys()][0]! };
  const weights = [...bySubset.values()];
  const shares = wholePercent(weights);
  const split: Record<string, number> = {};
  [...bySubset.keys()].forEach((s, i) => put(split, s, shares[i]!));
  const sum = weights.reduce((a, b) => a + b, 0);
  if (!weights.every((w) => (100 * w) % sum === 0)) doc.unsupported(path, `weights ${weights.join(', ')} are applied as ${shares.join(', ')} %: meshlet splits in whole percent`);
  return { split };
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

/**
 * The route's mirror: the first candidate with a share above 0 whose destination is in this
 * service; each other one is reported (meshlet copies to one destination per route).
 */
export function mirrorOf(candidates: readonly MirrorCandidate[], doc: Doc): MirrorConfig | undefined {
  let chosen: MirrorConfig | undefined;
  for (const { destination: d, path, percent, percentPath } of candidates) {
    if (percent === 0) continue; // Istio: an explicit 0 % mirrors nothing
    if (!d.local) {
      doc.unsupported(`${path}.host`, `mirrors to "${d.host}", ${OTHER_SERVICE}: nothing is mirrored`);
      if (percentPath !== undefined) doc.unsupported(percentPath, 'not applied: its mirror is not (another service)');
    } else if (chosen !== undefined) doc.unsupported(path, 'meshlet mirrors to one destination per route: this one is not applied');
    else chosen = { ...(d.subset !== undefined ? { subset: d.subset } : {}), ...(percent !== 100 ? { percent } : {}) };
  }
  return chosen;
}
