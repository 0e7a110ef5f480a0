/**
 * Subsets and routes of a service — Istio's DestinationRule subsets and VirtualService HTTP
 * routes, in-process.
 *
 * A subset is the endpoints whose labels include the subset's labels; it may override the
 * service's balancer, retry policy and timeout. Routes are tried in order; the first whose match
 * holds decides: one subset, another service of the mesh (or one of its subsets), or a weighted
 * split over these (weights add up to 100; route-destinations.ts), with
 * optional timeout and retry overrides, fault injection (a fixed delay or an abort with a status,
 * each for a percentage of requests) and mirroring (a copy of a percentage of requests to a
 * subset or another service, fire and forget; several mirrors each copy their own share). A route may also edit the request and response headers, rewrite the
 * path and Host, or answer by itself with a redirect or a fixed response (route-actions.ts). A
 * request that matches no route goes to the whole service.
 */
import type { Dispatcher } from 'undici';
import { InvalidConfigError } from '../core/errors.js';
import { describe } from '../core/endpoint-spec.js';
import { expectList, expectObject, join, optString, rejectUnknown } from '../config/check.js';
import { optDurationMs, type Duration } from '../config/duration.js';
import { parseRetryConfig, type ParsedRetry, type RetryConfig } from './retry-policy.js';
import { parseHedgeConfig, type HedgeConfig, type ParsedHedge } from './hedge-config.js';
import { parseLimitsConfig, type LimitsConfig, type ParsedLimits } from './concurrency-limit.js';
import { compileMatch, type Matcher, type RouteMatch } from '../routing/match.js';
import type { Target } from '../routing/target.js';
import type { Call } from '../request/call.js';
import type { Layer, Next } from '../request/layer.js';
import { parseFault, type FaultConfig, type ParsedFault } from './fault.js';
import { parseMirrors, parseRouteDestinations, type MirrorConfig, type ParsedMirror, type RouteDestination, type SplitDestination } from './route-destinations.js';
import type { RouteHeaders } from '../routing/header-ops.js';
import type { RewriteConfig } from '../routing/rewrite.js';
import type { DirectResponseConfig, RedirectConfig } from './local-answer.js';
import { applyRouteActions, parseRouteActions, type RouteActions } from './route-actions.js';

export type { FaultConfig } from './fault.js';
export type { MirrorConfig, ParsedMirror, RouteDestination, SplitDestination } from './route-destinations.js';
export type { HeaderOperations, RouteHeaders } from '../routing/header-ops.js';
export type { RewriteConfig } from '../routing/rewrite.js';
export type { DirectResponseConfig, RedirectConfig } from './local-answer.js';

/** A named subset of a service's endpoints (Istio DestinationRule `subsets`). */
export interface SubsetConfig<B = unknown> {
  /** Endpoints whose labels include all of these belong to the subset. */
  labels: Record<string, string>;
  /** Balancer for this subset; the service's when absent. */
  balancer?: B;
  /** Retry policy for this subset; the service's when absent. */
  retry?: RetryConfig | false;
  /** Deadline for requests to this subset (ms, or a duration such as `'2s'`); the service's when absent. */
  timeoutMs?: Duration;
  /** @deprecated use `timeoutMs` */
  timeout?: number;
  /** Concurrency limits of this subset, on top of the service's (Istio's subset connectionPool). */
  limits?: LimitsConfig;
}


/** One HTTP route (Istio VirtualService `http` entry). */
export interface RouteConfig {
  /** A name for stats and errors. */
  name?: string;
  /** Match blocks, any of which selects this route; absent: every request. */
  match?: RouteMatch[];
  /** Send to this subset (of `service`, when given). */
  subset?: string;
  /**
   * Send to another service of the mesh, by name: its endpoints, balancer, limits, health and TLS,
   * its own retry and timeout unless the route sets them (its routes are not consulted: one hop,
   * as Envoy sends a route to another cluster).
   */
  service?: string;
  /**
   * Split by weight, in whole percent adding up to 100: between subsets, `{ v1: 90, v2: 10 }`, or
   * over any destinations, `[{ weight: 90 }, { service: 'reviews-v2', weight: 10 }]` (an entry
   * without `service` is this service; without `subset`, the whole service).
   */
  split?: Record<string, number> | SplitDestination[];
  /** Deadline for matched requests (ms, or a duration such as `'2s'`; overrides subset and service). */
  timeoutMs?: Duration;
  /** @deprecated use `timeoutMs` */
  timeout?: number;
  /** Retry policy for matched requests (overrides subset and service). */
  retry?: RetryConfig | false;
  /** Hedging for matched requests (overrides the service's); `allowNonIdempotent` opts POST and PATCH in. */
  hedge?: HedgeConfig | boolean;
  fault?: FaultConfig;
  /** Mirror a copy of `percent` % (default 100) of matched requests to `subset` (or the whole service), of `service` when given. */
  mirror?: MirrorConfig;
  /** More mirrors, each copying its own share of matched requests (Istio's `mirrors`). */
  mirrors?: MirrorConfig[];
  /** Header operations on matched requests and their responses: `set`, `add`, `remove`. */
  headers?: RouteHeaders;
  /** Rewrite the path (`uri`, `uriRegexRewrite`) and the Host header (`authority`) of matched requests. */
  rewrite?: RewriteConfig;
  /** Answer matched requests with a redirect; no endpoint is contacted. */
  redirect?: RedirectConfig;
  /** Answer matched requests with this status and body; no endpoint is contacted. */
  directResponse?: DirectResponseConfig;
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
  /** The match blocks as configured (validated), for `toJSON`. */
  readonly match: readonly RouteMatch[] | undefined;
  /** The split as configured (validated), or null without a split. */
  readonly split: Readonly<Record<string, number>> | readonly SplitDestination[] | null;
  /** Destinations (service null = this one, subset null = the whole service) with cumulative weights ending at 100. */
  readonly destinations: readonly RouteDestination[];
  readonly timeoutMs: number | undefined;
  readonly retry: ParsedRetry | null | undefined;
  /** undefined: inherit the service's; null: off. */
  readonly hedge: ParsedHedge | null | undefined;
  readonly delay: ParsedFault['delay'];
  readonly abort: ParsedFault['abort'];
  /** `mirror`, then each of `mirrors`. */
  readonly mirrors: readonly ParsedMirror[];
  /** Header operations, rewrite or local answer; null when the route has none. */
  readonly actions: RouteActions | null;
}

const SUBSET_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

export function parseSubsets<B>(raw: unknown, path: string, parseBalancer: (raw: unknown, path: string) => B): ParsedSubset<B>[] {
  if (raw === undefined) return [];
  const o = expectObject(raw, path);
  return Object.entries(o).map(([name, value]) => {
    const p = join(path, name);
    if (!SUBSET_NAME.test(name)) throw new InvalidConfigError(p, 'a subset name is letters, digits, "-", "_" and "."');
    const s = expectObject(value, p);
    rejectUnknown(s, ['labels', 'balancer', 'retry', 'timeoutMs', 'limits'], p, ['timeout']);
    // `labels: {}`: every endpoint of the service — as an Istio subset without labels, whose
    // cluster has all the host's endpoints, there to give them another policy.
    const labels = expectObject(s.labels, join(p, 'labels'));
    for (const [k, v] of Object.entries(labels)) {
      if (typeof v !== 'string') throw new InvalidConfigError(join(join(p, 'labels'), k), `expected a string, got ${describe(v)}`);
    }
    return Object.freeze({
      name,
      labels: Object.freeze({ ...(labels as Record<string, string>) }),
      balancer: s.balancer === undefined ? undefined : parseBalancer(s.balancer, join(p, 'balancer')),
      retry: s.retry === undefined ? undefined : parseRetryConfig(s.retry, join(p, 'retry'), 'override'),
      timeoutMs: optDurationMs(s, 'timeoutMs', p, undefined, { min: 0, max: 86_400_000 }, { key: 'timeout', unitMs: 1 }),
      limits: s.limits === undefined ? undefined : parseLimitsConfig(s.limits, join(p, 'limits')),
    });
  });
}

/** @param self the name of the service whose routes these are */
export function parseRoutes(raw: unknown, path: string, subsets: ReadonlySet<string>, self: string): ParsedRoute[] {
  if (raw === undefined) return [];
  const known = (name: unknown, p: string): string => {
    if (typeof name !== 'string' || !subsets.has(name)) {
      throw new InvalidConfigError(p, `unknown subset ${describe(name)} (defined: ${[...subsets].join(', ') || 'none'})`);
    }
    return name;
  };
  return expectList(raw, path, 'a list of routes').map((value, i) => {
    const p = join(path, i);
    const r = expectObject(value, p);
    rejectUnknown(r, ['name', 'match', 'subset', 'service', 'split', 'timeoutMs', 'retry', 'hedge', 'fault', 'mirror', 'mirrors', 'headers', 'rewrite', 'redirect', 'directResponse'], p, ['timeout']);
    let matchers: Matcher[] = [];
    if (r.match !== undefined) {
      matchers = expectList(r.match, join(p, 'match'), 'a list of match blocks').map((m, j) => compileMatch(m, join(join(p, 'match'), j)));
    }
    const destinations = parseRouteDestinations(r, p, self, known);
    const { delay, abort } = parseFault(r.fault, join(p, 'fault'));
    const mirrors = parseMirrors(r, p, self, known);
    const actions = parseRouteActions(r, p);
    return Object.freeze({
      name: optString(r, 'name', p) ?? `route-${i}`,
      matchers,
      match: r.match === undefined ? undefined : (r.match as RouteMatch[]),
      split: r.split === undefined ? null : Array.isArray(r.split) ? (r.split as SplitDestination[]).map((d) => ({ ...d })) : { ...(r.split as Record<string, number>) },
      destinations,
      timeoutMs: optDurationMs(r, 'timeoutMs', p, undefined, { min: 0, max: 86_400_000 }, { key: 'timeout', unitMs: 1 }),
      retry: r.retry === undefined ? undefined : parseRetryConfig(r.retry, join(p, 'retry'), 'override'),
      hedge: parseHedgeConfig(r.hedge, join(p, 'hedge'), { route: true }),
      delay,
      abort,
      mirrors,
      actions,
    });
  });
}

/** Index of the first of `route`'s match blocks that holds (0 for a route without any), or -1. */
export function matchBlock(route: ParsedRoute, opts: Dispatcher.DispatchOptions): number {
  const matchers = route.matchers;
  if (matchers.length === 0) return 0;
  for (let j = 0; j < matchers.length; j++) if (matchers[j]!(opts)) return j;
  return -1;
}

/** The destination of `route` for a draw `r` in [0, 100). */
export function destinationOf(route: ParsedRoute, r: number): RouteDestination {
  for (const d of route.destinations) if (r < d.upTo) return d;
  return route.destinations[route.destinations.length - 1]!;
}

/**
 * The route layer: the first matching route picks where the request goes — a subset, another
 * service (`call.forward`, handed over by the forward layer), or a weighted split over these
 * (sticky per hash key when the service hashes requests) — and the
 * route's index, by which the fault, mirror, deadline and retry layers find the route's settings.
 * On only when the service has routes.
 */
export class RouteLayer implements Layer {
  readonly name = 'route';
  readonly #routes: readonly ParsedRoute[];
  readonly #targets: ReadonlyMap<string, Target>;
  readonly #draw: (call: Call) => number;

  /**
   * @param targets the subsets' targets by name
   * @param draw a number in [0, 100) for a weighted split
   */
  constructor(routes: readonly ParsedRoute[], targets: ReadonlyMap<string, Target>, draw: (call: Call) => number) {
    this.#routes = routes;
    this.#targets = targets;
    this.#draw = draw;
  }

  handle(call: Call, next: Next): void {
    const routes = this.#routes;
    for (let i = 0; i < routes.length; i++) {
      const route = routes[i]!;
      const block = matchBlock(route, call.opts);
      if (block < 0) continue;
      call.routeIndex = i;
      if (route.actions !== null && applyRouteActions(call, route.actions, block)) return;
      const d = route.destinations.length === 1 ? route.destinations[0]! : destinationOf(route, this.#draw(call));
      if (d.service !== null) call.forward = d; // the forward layer hands it over, after this route's fault and mirrors
      else if (d.subset !== null) call.target = this.#targets.get(d.subset)!;
      break;
    }
    next(call);
  }
}
