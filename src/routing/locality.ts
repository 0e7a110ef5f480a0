/**
 * Locality: where this process runs, and how endpoints are ranked against it.
 *
 * Default (Istio's locality failover): endpoints in the caller's zone rank 0, the rest of its
 * region 1, everything else 2. `failover` names, per caller region, the regions to prefer next
 * (in order, from rank 2; the regions not listed rank after them). Ranks become tiers that take traffic in Envoy's priority manner
 * (see tiers.ts), so traffic moves away gradually as the local tier's healthy share falls.
 * `distribute` instead fixes the share of each locality (Istio's `distribute`).
 *
 * The process's own locality comes from `createMesh({ locality })`, else the environment
 * (`MESHLET_REGION`, `MESHLET_ZONE`), else it is unknown (every endpoint ranks 0: no preference).
 */
import { InvalidConfigError } from '../core/errors.js';
import { describe } from '../core/endpoint-spec.js';
import { expectList, expectObject, join, optBoolean, optString, rejectUnknown } from '../config/check.js';

/** Where this process runs. */
export interface Locality {
  region?: string | undefined;
  zone?: string | undefined;
}

/** Locality-aware balancing of a service (Istio's `localityLbSetting`). */
export interface LocalityLbConfig {
  /** Prefer nearby endpoints. @default true (a no-op while the process locality is unknown) */
  enabled?: boolean;
  /** Regions to fail over to, in order, per source region: `[{ from: 'us-east', to: 'us-west' }]`. */
  failover?: { from: string; to: string }[];
  /**
   * Fixed traffic shares by locality for callers in `from` (`region/zone` or `region/*`):
   * `[{ from: 'us-east/a', to: { 'us-east/a': 80, 'us-east/b': 20 } }]`. Shares must add up to 100.
   */
  distribute?: { from: string; to: Record<string, number> }[];
}

export interface ParsedLocalityLb {
  readonly enabled: boolean;
  readonly failover: ReadonlyMap<string, readonly string[]>;
  readonly distribute: readonly { from: string; to: readonly { locality: string; weight: number }[] }[];
}

/** A failover rule's regions, both required. @throws InvalidConfigError naming `path` */
export function failoverRegions(from: string | undefined, to: string | undefined, path: string): [string, string] {
  if (!from || !to) throw new InvalidConfigError(path, 'expected both "from" and "to" regions');
  return [from, to];
}

export function parseLocalityLb(raw: unknown, path: string): ParsedLocalityLb {
  const o = raw === undefined ? {} : expectObject(raw, path);
  rejectUnknown(o, ['enabled', 'failover', 'distribute'], path);
  const failover = new Map<string, string[]>();
  if (o.failover !== undefined) {
    expectList(o.failover, join(path, 'failover'), 'a list of { from, to }').forEach((f, i) => {
      const p = join(join(path, 'failover'), i);
      const e = expectObject(f, p);
      rejectUnknown(e, ['from', 'to'], p);
      const [from, to] = failoverRegions(optString(e, 'from', p), optString(e, 'to', p), p);
      failover.set(from, [...(failover.get(from) ?? []), to]);
    });
  }
  const distribute: { from: string; to: { locality: string; weight: number }[] }[] = [];
  if (o.distribute !== undefined) {
    expectList(o.distribute, join(path, 'distribute'), 'a list of { from, to }').forEach((d, i) => {
      const p = join(join(path, 'distribute'), i);
      const e = expectObject(d, p);
      rejectUnknown(e, ['from', 'to'], p);
      const from = optString(e, 'from', p);
      if (!from) throw new InvalidConfigError(join(p, 'from'), 'required: the caller locality this rule applies to');
      const to = expectObject(e.to, join(p, 'to'));
      let sum = 0;
      const list = Object.entries(to).map(([locality, w]) => {
        if (typeof w !== 'number' || !Number.isInteger(w) || w < 0 || w > 100) {
          throw new InvalidConfigError(join(join(p, 'to'), locality), `expected a share from 0 to 100, got ${describe(w)}`);
        }
        sum += w;
        return { locality, weight: w };
      });
      if (sum !== 100) throw new InvalidConfigError(join(p, 'to'), `shares must add up to 100, got ${sum}`);
      distribute.push({ from, to: list });
    });
  }
  if (failover.size > 0 && distribute.length > 0) {
    throw new InvalidConfigError(path, 'give either "failover" or "distribute", not both (as Istio)');
  }
  return Object.freeze({ enabled: optBoolean(o, 'enabled', path, true), failover, distribute });
}

/** The process locality from config or the environment. */
export function processLocality(config: Locality | undefined, env: NodeJS.ProcessEnv = process.env): Locality {
  return {
    region: config?.region ?? (env.MESHLET_REGION || undefined),
    zone: config?.zone ?? (env.MESHLET_ZONE || undefined),
  };
}

/** True when locality pattern `pattern` (`region`, `region/zone`, `region/*`, `*`) covers `region/zone`. */
export function localityMatches(pattern: string, region: string | undefined, zone: string | undefined): boolean {
  const [pr, pz] = pattern.split('/');
  if (pr !== '*' && pr !== region) return false;
  return pz === undefined || pz === '*' || pz === zone;
}

/** Rank of an endpoint's locality for a caller (0 = nearest). */
export function localityRank(
  lb: ParsedLocalityLb,
  caller: Locality,
  region: string | undefined,
  zone: string | undefined,
): number {
  if (!lb.enabled || (caller.region === undefined && caller.zone === undefined)) return 0;
  // As Envoy compares localities: a part not given is "" — a caller that knows only its zone
  // (`MESHLET_ZONE`, no region) prefers that zone among endpoints without a region either
  // (EndpointSlices give a zone and no region), then those, then the rest.
  if ((region ?? '') === (caller.region ?? '')) return zone !== undefined && zone === caller.zone ? 0 : caller.zone === undefined ? 0 : 1;
  if (caller.region === undefined) return 2;
  const next = lb.failover.get(caller.region);
  if (next === undefined) return 2;
  const i = next.indexOf(region ?? '');
  return i < 0 ? 2 + next.length : 2 + i;
}

/** The `distribute` rule that applies to the caller, if any. */
export function distributionFor(lb: ParsedLocalityLb, caller: Locality): ParsedLocalityLb['distribute'][number] | undefined {
  if (!lb.enabled || caller.region === undefined) return undefined;
  return lb.distribute.find((d) => localityMatches(d.from, caller.region, caller.zone));
}
