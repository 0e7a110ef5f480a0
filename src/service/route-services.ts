/**
 * Routes and mirrors that name another service of the mesh (`service` in a route, a split entry
 * or a mirror): checked once every service is parsed — the service must exist and the subset be
 * one of its — and, per service, the routes of others that hand requests to it (their timeout,
 * retry and hedge apply there; service/pipeline.ts).
 */
import { InvalidConfigError } from '../core/errors.js';
import { join } from '../config/check.js';
import type { ParsedRoute } from '../layers/route.js';
import type { ParsedDestination } from '../layers/route-destinations.js';

interface Named {
  readonly name: string;
  readonly subsets: readonly { readonly name: string }[];
  readonly routes: readonly ParsedRoute[];
}

/** @throws InvalidConfigError naming the `service` or `subset` field of a destination that is not in the mesh. */
export function checkRouteServices(services: readonly Named[]): void {
  const byName = new Map(services.map((s) => [s.name, s]));
  const check = (d: ParsedDestination): void => {
    if (d.service === null) return;
    const to = byName.get(d.service);
    if (to === undefined) {
      throw new InvalidConfigError(join(d.path, 'service'), `unknown service "${d.service}" (services: ${[...byName.keys()].join(', ')})`);
    }
    if (d.subset !== null && !to.subsets.some((x) => x.name === d.subset)) {
      const defined = to.subsets.map((x) => x.name).join(', ') || 'none';
      throw new InvalidConfigError(join(d.path, 'subset'), `unknown subset "${d.subset}" of service "${d.service}" (defined: ${defined})`);
    }
  };
  for (const s of services) {
    for (const r of s.routes) {
      r.destinations.forEach(check);
      r.mirrors.forEach(check);
    }
  }
}

/** The routes of other services that send requests to each service, by its name, in config order. */
export function importedRoutes(services: readonly Named[]): Map<string, ParsedRoute[]> {
  const out = new Map<string, ParsedRoute[]>();
  for (const s of services) {
    for (const r of s.routes) {
      for (const to of new Set(r.destinations.map((d) => d.service))) {
        if (to === null) continue;
        const list = out.get(to) ?? [];
        list.push(r);
        out.set(to, list);
      }
    }
  }
  return out;
}
