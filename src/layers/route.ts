/**
 * Subsets and routes of a service — Istio's DestinationRule subsets and VirtualService HTTP
 * routes, in-process.
 *
 * A subset is the endpoints whose labels include the subset's labels; it may override the
 * service's balancer, retry policy and timeout. Routes are tried in order; the first whose match
 * holds decides: one subset, or a weighted split between subsets (weights add up to 100), with
 * optional timeout and retry overrides, fault injection (a fixed delay or an abort with a status,
 * each for a percentage of requests) and mirroring (a copy of a percentage of requests to a
 * subset, fire and forget). A request that matches no route goes to the whole service.
 */
import type { Dispatcher } from 'undici';
import { InvalidConfigError } from '../core/errors.js';
import { describe } from '../core/endpoint-spec.js';
import { expectObject, join, optNumber, optString, rejectUnknown, type Raw } from '../config/check.js';
import { parseRetryConfig, type ParsedRetry, type RetryConfig } from './retry-policy.js';
import { parseLimitsConfig, type LimitsConfig, type ParsedLimits } from './concurrency-limit.js';
import { compileMatch, type Matcher, type RouteMatch } from '../routing/match.js';

/** A named subset of a service's endpoints (Istio DestinationRule `subsets`). */
export interface SubsetConfig<B = unknown> {
  /** Endpoints whose labels include all of these belong to the subset. */
  labels: Record<string, string>;
  /** Balancer for this subset; the service's when absent. */
  balancer?: B;
  /** Retry policy for this subset; the service's when absent. */
  retry?: RetryConfig | false;
  /** Deadline for requests to this subset, ms; the service's when absent. */
  timeout?: number;
  /** Concurrency limits of this subset, on top of the service's (Istio's subset connectionPool). */
  limits?: LimitsConfig;
}

/** Fault injection of a route (Istio HTTPFaultInjection). */
export interface FaultConfig {
  /** Delay `percent` % of requests by `fixedDelayMs` before sending them. */
  delay?: { fixedDelayMs: number; percent?: number };
  /** Answer `percent` % of requests locally with `httpStatus`, without sending them. */
  abort?: { httpStatus: number; percent?: number };
}

/** One HTTP route (Istio VirtualService `http` entry). */
export interface RouteConfig {
  /** A name for stats and errors. */
  name?: string;
  /** Match blocks, any of which selects this route; absent: every request. */
  match?: RouteMatch[];
  /** Send to this subset. */
  subset?: string;
  /** Split by weight between subsets, e.g. `{ v1: 90, v2: 10 }`; weights add up to 100. */
  split?: Record<string, number>;
  /** Deadline for matched requests, ms (overrides subset and service). */
  timeout?: number;
  /** Retry policy for matched requests (overrides subset and service). */
  retry?: RetryConfig | false;
  fault?: FaultConfig;
  /** Mirror a copy of `percent` % (default 100) of matched requests to `subset` (or the whole service). */
  mirror?: { subset?: string; percent?: number };
}

export interface ParsedSubset<B> {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly balancer: B | undefined;
  /** undefined: inherit; null: retries off. */
  readonly retry: ParsedRetry | null | undefined;
  readonly timeoutMs: number | undefined;
  readonly limits: ParsedLimits | undefined;
}

export interface ParsedRoute {
  readonly name: string;
  readonly matchers: readonly Matcher[];
  /** Destination subsets (null = whole service) with cumulative weights ending at 100. */
  readonly destinations: readonly { readonly subset: string | null; readonly upTo: number }[];
  readonly timeoutMs: number | undefined;
  readonly retry: ParsedRetry | null | undefined;
  readonly delay: { readonly ms: number; readonly percent: number } | null;
  readonly abort: { readonly status: number; readonly percent: number } | null;
  readonly mirror: { readonly subset: string | null; readonly percent: number } | null;
}

const SUBSET_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

export function parseSubsets<B>(raw: unknown, path: string, parseBalancer: (raw: unknown, path: string) => B): ParsedSubset<B>[] {
  if (raw === undefined) return [];
  const o = expectObject(raw, path);
  return Object.entries(o).map(([name, value]) => {
    const p = join(path, name);
    if (!SUBSET_NAME.test(name)) throw new InvalidConfigError(p, 'a subset name is letters, digits, "-", "_" and "."');
    const s = expectObject(value, p);
    rejectUnknown(s, ['labels', 'balancer', 'retry', 'timeout', 'limits'], p);
    const labels = expectObject(s.labels, join(p, 'labels'));
    if (Object.keys(labels).length === 0) throw new InvalidConfigError(join(p, 'labels'), 'expected at least one label');
    for (const [k, v] of Object.entries(labels)) {
      if (typeof v !== 'string') throw new InvalidConfigError(join(join(p, 'labels'), k), `expected a string, got ${describe(v)}`);
    }
    return Object.freeze({
      name,
      labels: Object.freeze({ ...(labels as Record<string, string>) }),
      balancer: s.balancer === undefined ? undefined : parseBalancer(s.balancer, join(p, 'balancer')),
      retry: s.retry === undefined ? undefined : parseRetryConfig(s.retry, join(p, 'retry')),
      timeoutMs: s.timeout === undefined ? undefined : optNumber(s, 'timeout', p, 0, { min: 0, max: 86_400_000 }),
      limits: s.limits === undefined ? undefined : parseLimitsConfig(s.limits, join(p, 'limits')),
    });
  });
}

function percentOf(o: Raw, path: string): number {
  return optNumber(o, 'percent', path, 100, { min: 0, max: 100 });
}

export function parseRoutes(raw: unknown, path: string, subsets: ReadonlySet<string>): ParsedRoute[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) throw new InvalidConfigError(path, `expected a list of routes, got ${describe(raw)}`);
  const known = (name: unknown, p: string): string => {
    if (typeof name !== 'string' || !subsets.has(name)) {
      throw new InvalidConfigError(p, `unknown subset ${describe(name)} (defined: ${[...subsets].join(', ') || 'none'})`);
    }
    return name;
  };
  return raw.map((value, i) => {
    const p = join(path, i);
    const r = expectObject(value, p);
    rejectUnknown(r, ['name', 'match', 'subset', 'split', 'timeout', 'retry', 'fault', 'mirror'], p);
    let matchers: Matcher[] = [];
    if (r.match !== undefined) {
      if (!Array.isArray(r.match)) throw new InvalidConfigError(join(p, 'match'), `expected a list of match blocks, got ${describe(r.match)}`);
      matchers = r.match.map((m, j) => compileMatch(m, join(join(p, 'match'), j)));
    }
    if (r.subset !== undefined && r.split !== undefined) throw new InvalidConfigError(join(p, 'split'), 'give either "subset" or "split", not both');
    let destinations: { subset: string | null; upTo: number }[] = [{ subset: null, upTo: 100 }];
    if (r.subset !== undefined) destinations = [{ subset: known(r.subset, join(p, 'subset')), upTo: 100 }];
    if (r.split !== undefined) {
      const split = expectObject(r.split, join(p, 'split'));
      let acc = 0;
      destinations = Object.entries(split).map(([name, w]) => {
        known(name, join(join(p, 'split'), name));
        if (typeof w !== 'number' || !Number.isInteger(w) || w < 0 || w > 100) {
          throw new InvalidConfigError(join(join(p, 'split'), name), `expected a weight from 0 to 100, got ${describe(w)}`);
        }
        acc += w;
        return { subset: name, upTo: acc };
      });
      if (acc !== 100) throw new InvalidConfigError(join(p, 'split'), `weights must add up to 100, got ${acc}`);
    }
    let delay: ParsedRoute['delay'] = null;
    let abort: ParsedRoute['abort'] = null;
    if (r.fault !== undefined) {
      const fp = join(p, 'fault');
      const f = expectObject(r.fault, fp);
      rejectUnknown(f, ['delay', 'abort'], fp);
      if (f.delay !== undefined) {
        const dp = join(fp, 'delay');
        const d = expectObject(f.delay, dp);
        rejectUnknown(d, ['fixedDelayMs', 'percent'], dp);
        if (d.fixedDelayMs === undefined) throw new InvalidConfigError(join(dp, 'fixedDelayMs'), 'required');
        delay = { ms: optNumber(d, 'fixedDelayMs', dp, 0, { min: 0, max: 3_600_000 }), percent: percentOf(d, dp) };
      }
      if (f.abort !== undefined) {
        const ap = join(fp, 'abort');
        const a = expectObject(f.abort, ap);
        rejectUnknown(a, ['httpStatus', 'percent'], ap);
        if (a.httpStatus === undefined) throw new InvalidConfigError(join(ap, 'httpStatus'), 'required');
        abort = { status: optNumber(a, 'httpStatus', ap, 0, { integer: true, min: 200, max: 599 }), percent: percentOf(a, ap) };
      }
    }
    let mirror: ParsedRoute['mirror'] = null;
    if (r.mirror !== undefined) {
      const mp = join(p, 'mirror');
      const m = expectObject(r.mirror, mp);
      rejectUnknown(m, ['subset', 'percent'], mp);
      mirror = { subset: m.subset === undefined ? null : known(m.subset, join(mp, 'subset')), percent: percentOf(m, mp) };
    }
    return Object.freeze({
      name: optString(r, 'name', p) ?? `route-${i}`,
      matchers,
      destinations,
      timeoutMs: r.timeout === undefined ? undefined : optNumber(r, 'timeout', p, 0, { min: 0, max: 86_400_000 }),
      retry: r.retry === undefined ? undefined : parseRetryConfig(r.retry, join(p, 'retry')),
      delay,
      abort,
      mirror,
    });
  });
}

/** The first route whose match holds, or undefined. */
export function matchRoute(routes: readonly ParsedRoute[], opts: Dispatcher.DispatchOptions): ParsedRoute | undefined {
  for (const route of routes) {
    if (route.matchers.length === 0) return route;
    for (const m of route.matchers) if (m(opts)) return route;
  }
  return undefined;
}

/** The destination of `route` for a draw `r` in [0, 100). */
export function destinationOf(route: ParsedRoute, r: number): string | null {
  for (const d of route.destinations) if (r < d.upTo) return d.subset;
  return route.destinations[route.destinations.length - 1]!.subset;
}
