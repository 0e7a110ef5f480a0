/**
 * A service's balancer as configured: a registered name, or `{ type, hashOn?, ...options }`, and
 * where hash balancers take each request's key from. Parsed once, at createMesh; the balancer's
 * own options are validated by its definition's `parseOptions`.
 */
import type { BalancerDefinition, BalancerRegistry } from './balancer.js';
import { describe } from '../core/endpoint-spec.js';
import { InvalidConfigError } from '../core/errors.js';
import { expectList, expectObject, join, optNumber, optString, rejectUnknown, userCode, type Raw } from '../config/check.js';
import { optDurationMs, type Duration } from '../config/duration.js';
import { DEFAULT_DECAY_MS } from '../load/endpoint-load.js';

/**
 * One part of a request's hash (Envoy's `hash_policy`): a header, a cookie or a query parameter,
 * hashed with XXH64 as Envoy hashes it, or your own key function. With `terminal`, a policy that
 * yields a hash ends the list (Envoy's `terminal`).
 */
export type HashPolicy =
  /** The header's value; several values of a repeated header are hashed sorted, as Envoy does. */
  | { header: string; terminal?: boolean }
  /**
   * A cookie's value. With `ttlMs`, a request without the cookie gets a new random value, and the
   * response sets it (`Path=path`, `Max-Age`, `HttpOnly`) so the client's next requests stick —
   * Envoy's generated hash cookie; `ttlMs: 0` makes it a session cookie (no `Max-Age`), as Envoy's
   * zero TTL does. Otherwise at least 1000 (Max-Age is in whole seconds).
   */
  | { cookie: string; ttlMs?: Duration; path?: string; terminal?: boolean }
  /** The query parameter's first value, undecoded (as Envoy reads it). */
  | { query: string; terminal?: boolean }
  /** Your own key function (its result hashed as UTF-8); return undefined for no value. */
  | ((request: HashRequest) => string | undefined);

/**
 * Where a hash balancer takes the request's hash from: one {@link HashPolicy}, or a list combined
 * as Envoy combines them (each value's hash XORed into the previous result rotated left by one
 * bit). A request for which no policy yields a value is placed at random.
 */
export type HashOn = HashPolicy | readonly HashPolicy[];

/** Options of the built-in balancers, by name (every field optional; defaults in each balancer's file). */
export interface BuiltinBalancers {
  'round-robin': {};
  random: {};
  'least-request': { /** Endpoints sampled per pick. @default 2 */ choiceCount?: number };
  'peak-ewma': { /** Endpoints sampled per pick. @default 2 */ choiceCount?: number; /** Decay of the latency estimate. @default 300 */ decayMs?: Duration };
  prequal: {
    /** Endpoints sampled per pick when the service has more than 8. @default 2 */ choiceCount?: number;
    /** Quantile of requests in flight above which an endpoint is hot (0.5–0.99). @default 0.84 */ hotQuantile?: number;
    /** Add the requests in flight a replica reports (ORCA named metric `rif`) that were not this client's. @default false */ reportedRif?: boolean;
  };
  'ring-hash': { hashOn?: HashOn; minimumRingSize?: number; maximumRingSize?: number; /** Bounded loads, percent of the mean (≥ 100). */ balanceFactor?: number };
  maglev: { hashOn?: HashOn; /** A prime. @default 65537 */ tableSize?: number; balanceFactor?: number };
  'weighted-round-robin': {
    /** How long an endpoint must report load before its weight is used. @default 10000 */
    blackoutPeriodMs?: Duration;
    /** A weight not refreshed by a report for this long is dropped. @default 180000 */
    weightExpirationPeriodMs?: Duration;
    /** How often weights are recomputed, ≥ 100 ms. @default 1000 */
    weightUpdatePeriodMs?: Duration;
    /** Weight = qps / (utilization + eps / qps × this). @default 1 */
    errorUtilizationPenalty?: number;
  };
}

/**
 * Balancers you register (`registerBalancer`, `createMesh({ balancers })`), by name, with their
 * options — declared by module augmentation, so that a misspelled name still fails `tsc`:
 * `declare module 'meshletjs' { interface CustomBalancers { 'zone-first': { zone?: string } } }`.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface CustomBalancers {}

/** Every balancer name the config accepts: the built-ins and the ones declared in {@link CustomBalancers}. */
export type BalancerName = keyof BuiltinBalancers | keyof CustomBalancers;

type BalancerOptions<K> = K extends keyof BuiltinBalancers ? BuiltinBalancers[K] : K extends keyof CustomBalancers ? CustomBalancers[K] : never;

/** A balancer by name, or by name with its options: `'prequal'`, `{ type: 'ring-hash', hashOn: { header: 'x-user' } }`. */
export type BalancerConfig = BalancerName | { [K in BalancerName]: { type: K } & BalancerOptions<K> }[BalancerName];

/** What a hash key function sees of a request. */
export interface HashRequest {
  readonly method: string;
  readonly path: string;
  /** Header value by lower-case name (first value when repeated). */
  header(name: string): string | undefined;
}

/** A balancer as configured: which one, its validated options, and where requests' hash keys come from. */
export interface ParsedBalancer {
  readonly name: string;
  readonly def: BalancerDefinition<any>;
  readonly options: unknown;
  readonly hashOn: HashOn | undefined;
}

/**
 * The time constant of the endpoints' latency estimate (load/endpoint-load.ts) under a service's
 * balancer: its `decayMs` option when it has one (peak-ewma), else the default.
 */
export function decayMsOf(balancer: ParsedBalancer): number {
  const decay = (balancer.options as { decayMs?: unknown } | null)?.decayMs;
  return typeof decay === 'number' ? decay : DEFAULT_DECAY_MS;
}

/**
 * The default balancer: prequal, whose hot-cold rule an idle slow replica cannot fool where
 * peak-ewma's latency × (in-flight + 1) could (bench/tail-latency.mjs measures both; README, Benchmarks).
 */
export const DEFAULT_BALANCER = 'prequal';

export function defaultBalancer(balancers: BalancerRegistry, path: string): ParsedBalancer {
  const def = balancers.get(DEFAULT_BALANCER);
  if (!def) throw new InvalidConfigError(path, `the default balancer "${DEFAULT_BALANCER}" is not registered`);
  return Object.freeze({ name: DEFAULT_BALANCER, def, options: parseOptions(def, DEFAULT_BALANCER, {}, path), hashOn: undefined });
}

/** Parse a balancer config: a registered name, or `{ type, hashOn?, ...options }`. */
export function parseBalancer(raw: unknown, path: string, balancers: BalancerRegistry): ParsedBalancer {
  let name: string;
  let rest: Raw = {};
  let hashOn: HashOn | undefined;
  if (typeof raw === 'string') name = raw;
  else {
    const b = expectObject(raw, path);
    const { type, hashOn: rawHashOn, ...others } = b;
    if (typeof type !== 'string') throw new InvalidConfigError(join(path, 'type'), `expected a balancer name, got ${describe(type)}`);
    name = type;
    rest = others;
    if (rawHashOn !== undefined) hashOn = parseHashOn(rawHashOn, join(path, 'hashOn'));
  }
  const def = balancers.get(name);
  if (!def) {
    throw new InvalidConfigError(typeof raw === 'string' ? path : join(path, 'type'), `unknown balancer "${name}" (registered: ${balancers.names().join(', ')})`);
  }
  if (hashOn !== undefined && !def.usesHash) {
    throw new InvalidConfigError(join(path, 'hashOn'), `balancer "${name}" does not hash requests; use ring-hash or maglev`);
  }
  return Object.freeze({ name, def, options: parseOptions(def, name, rest, path), hashOn });
}

/** The balancer's own options parser (registered code: whatever else it throws becomes an InvalidConfigError). */
function parseOptions(def: BalancerDefinition<any>, name: string, raw: Raw, path: string): unknown {
  return def.parseOptions ? userCode(path, `the "${name}" balancer's parseOptions`, () => def.parseOptions!(raw, path)) : raw;
}

function parseHashOn(raw: unknown, path: string): HashOn {
  if (!Array.isArray(raw)) return parsePolicy(raw, path);
  const items = expectList(raw, path, 'a list of hash policies');
  if (items.length === 0) throw new InvalidConfigError(path, 'expected at least one hash policy');
  const list = items.map((p, i) => parsePolicy(p, join(path, i)));
  const generated = list.filter((p) => typeof p !== 'function' && 'cookie' in p && p.ttlMs !== undefined);
  if (generated.length > 1) throw new InvalidConfigError(path, 'expected at most one cookie policy with ttlMs (a response sets one generated cookie)');
  return Object.freeze(list);
}

/** A hash policy's header, cookie or query parameter name. @throws InvalidConfigError naming `path` */
export function hashName(v: unknown, path: string): asserts v is string {
  if (typeof v !== 'string' || v === '') throw new InvalidConfigError(path, `expected a non-empty name, got ${describe(v)}`);
}

/** A hash policy's cookie name (an HTTP token). @throws InvalidConfigError naming `path` */
export function cookieName(v: string, path: string): void {
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(v)) throw new InvalidConfigError(path, `expected a cookie name, got ${describe(v)}`);
}

/** A generated cookie's Path. @throws InvalidConfigError naming `path` */
export function cookiePathText(v: string, path: string): void {
  if (!v.startsWith('/')) throw new InvalidConfigError(path, `expected a path starting with "/", got ${describe(v)}`);
}

function parsePolicy(raw: unknown, path: string): HashPolicy {
  if (typeof raw === 'function') return raw as HashPolicy;
  const o = expectObject(raw, path);
  const kinds = ['header', 'cookie', 'query'].filter((k) => o[k] !== undefined);
  if (kinds.length !== 1) throw new InvalidConfigError(path, 'expected exactly one of { header }, { cookie }, { query }, or a function');
  const k = kinds[0]!;
  const v = o[k];
  hashName(v, join(path, k));
  if (o.terminal !== undefined && typeof o.terminal !== 'boolean') throw new InvalidConfigError(join(path, 'terminal'), `expected a boolean, got ${describe(o.terminal)}`);
  const terminal = o.terminal === true ? { terminal: true } : {};
  if (k === 'cookie') {
    rejectUnknown(o, ['cookie', 'ttlMs', 'path', 'terminal'], path);
    cookieName(v, join(path, 'cookie'));
    const ttlMs = optDurationMs(o, 'ttlMs', path, undefined, { min: 0, max: 400 * 86_400_000 });
    if (ttlMs !== undefined && ttlMs > 0 && ttlMs < 1000) throw new InvalidConfigError(join(path, 'ttlMs'), `expected 0 (a session cookie) or at least 1000 (Max-Age is in whole seconds), got ${describe(o.ttlMs)}`);
    const cookiePath = optString(o, 'path', path);
    if (cookiePath !== undefined) cookiePathText(cookiePath, join(path, 'path'));
    return Object.freeze({ cookie: v, ...(ttlMs !== undefined ? { ttlMs } : {}), ...(cookiePath !== undefined ? { path: cookiePath } : {}), ...terminal });
  }
  rejectUnknown(o, [k, 'terminal'], path);
  return Object.freeze(k === 'header' ? { header: v.toLowerCase(), ...terminal } : { query: v, ...terminal });
}

/** True when one of `balancers` reads the load reports endpoints send (its `usesLoadReports`, a flag or decided from its options). */
export function readsLoadReports(balancers: readonly (ParsedBalancer | null | undefined)[]): boolean {
  return balancers.some((b) => declares(b, 'usesLoadReports'));
}

/** True when one of `balancers` reads the endpoints' recent latency by RIF (its `usesRecentLatency`). */
export function readsRecentLatency(balancers: readonly (ParsedBalancer | null | undefined)[]): boolean {
  return balancers.some((b) => declares(b, 'usesRecentLatency'));
}

function declares(b: ParsedBalancer | null | undefined, flag: 'usesLoadReports' | 'usesRecentLatency'): boolean {
  const uses = b?.def[flag];
  return uses === true || (typeof uses === 'function' && uses(b!.options) === true);
}
