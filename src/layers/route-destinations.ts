/**
 * Where a route sends its requests, and where it copies them: a subset of the route's own service,
 * the whole service, another service of the mesh (or a subset of it), or a weighted split over
 * any of these; mirrors likewise. A destination in another service is checked once every service
 * is parsed (service/route-services.ts): its service must exist, and its subset be one of that
 * service's.
 */
import { InvalidConfigError } from '../core/errors.js';
import { describe } from '../core/endpoint-spec.js';
import { expectList, expectObject, join, rejectUnknown, type Raw } from '../config/check.js';
import { percentOf } from './fault.js';

/** One destination of a weighted split given as a list. */
export interface SplitDestination {
  /** Another service of the mesh, by name; the route's own service when unset. */
  service?: string;
  /** A subset (of `service`, when given); the whole service when unset. */
  subset?: string;
  /** Whole percent, 0 to 100; the split's weights add up to 100. */
  weight: number;
}

/** A copy of a share of a route's requests, fire and forget (Istio's `mirror`, `mirrors`). */
export interface MirrorConfig {
  /** Another service of the mesh, by name, that receives the copies; the route's own service when unset. */
  service?: string;
  /** Subset (of `service`, when given) that receives the copies; the whole service when unset. */
  subset?: string;
  /** Share of the route's requests copied, percent. @default 100 */
  percent?: number;
}

/** A destination as parsed: `service` null is the route's own service, `subset` null the whole service. */
export interface ParsedDestination {
  readonly service: string | null;
  readonly subset: string | null;
  /** The config path of the destination, for errors found after every service is parsed. */
  readonly path: string;
}

export interface RouteDestination extends ParsedDestination {
  /** Cumulative weight, ending at 100. */
  readonly upTo: number;
}

export interface ParsedMirror extends ParsedDestination {
  readonly percent: number;
}

/** Checks a subset name of the route's own service; returns it. */
export type KnownSubset = (name: unknown, path: string) => string;

/** `service` and `subset` of `o` at `path`: `self` (the route's service) reads as the own service. */
function destinationIn(o: Raw, path: string, self: string, known: KnownSubset): ParsedDestination {
  let service: string | null = null;
  if (o.service !== undefined) {
    if (typeof o.service !== 'string' || o.service === '') throw new InvalidConfigError(join(path, 'service'), `expected a service name, got ${describe(o.service)}`);
    if (o.service !== self) service = o.service;
  }
  let subset: string | null = null;
  if (o.subset !== undefined) {
    if (service === null) subset = known(o.subset, join(path, 'subset'));
    else if (typeof o.subset !== 'string' || o.subset === '') throw new InvalidConfigError(join(path, 'subset'), `expected a subset name, got ${describe(o.subset)}`);
    else subset = o.subset;
  }
  return { service, subset, path };
}

/** `subset`, `service` and `split` of route `r` at `p`: the destinations with cumulative weights. */
export function parseRouteDestinations(r: Raw, p: string, self: string, known: KnownSubset): RouteDestination[] {
  if (r.split !== undefined && (r.subset !== undefined || r.service !== undefined)) {
    throw new InvalidConfigError(join(p, 'split'), `give either "${r.subset !== undefined ? 'subset' : 'service'}" or "split", not both`);
  }
  if (r.split === undefined) return [{ ...destinationIn(r, p, self, known), upTo: 100 }];
  const sp = join(p, 'split');
  let acc = 0;
  const weightOf = (w: unknown, wp: string): number => {
    if (typeof w !== 'number' || !Number.isInteger(w) || w < 0 || w > 100) throw new InvalidConfigError(wp, `expected a weight from 0 to 100, got ${describe(w)}`);
    return (acc += w);
  };
  let out: RouteDestination[];
  if (Array.isArray(r.split)) {
    const list = expectList(r.split, sp, 'a list of { service?, subset?, weight }');
    if (list.length === 0) throw new InvalidConfigError(sp, 'expected at least one destination');
    out = list.map((v, i) => {
      const ep = join(sp, i);
      const e = expectObject(v, ep);
      rejectUnknown(e, ['service', 'subset', 'weight'], ep);
      if (e.weight === undefined) throw new InvalidConfigError(join(ep, 'weight'), 'required');
      const d = destinationIn(e, ep, self, known);
      return { ...d, upTo: weightOf(e.weight, join(ep, 'weight')) };
    });
  } else {
    const split = expectObject(r.split, sp);
    out = Object.entries(split).map(([name, w]) => {
      const ep = join(sp, name);
      return { service: null, subset: known(name, ep), path: ep, upTo: weightOf(w, ep) };
    });
  }
  if (acc !== 100) throw new InvalidConfigError(sp, `weights must add up to 100, got ${acc}`);
  return out;
}

/** `mirror` (one) and `mirrors` (a list) of route `r` at `p`, in that order. */
export function parseMirrors(r: Raw, p: string, self: string, known: KnownSubset): ParsedMirror[] {
  const one = (raw: unknown, mp: string): ParsedMirror => {
    const m = expectObject(raw, mp);
    rejectUnknown(m, ['service', 'subset', 'percent'], mp);
    return { ...destinationIn(m, mp, self, known), percent: percentOf(m, mp) };
  };
  const out: ParsedMirror[] = [];
  if (r.mirror !== undefined) out.push(one(r.mirror, join(p, 'mirror')));
  if (r.mirrors !== undefined) expectList(r.mirrors, join(p, 'mirrors'), 'a list of mirrors').forEach((m, i) => out.push(one(m, join(join(p, 'mirrors'), i))));
  return out;
}
