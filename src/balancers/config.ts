/**
 * A service's balancer as configured: a registered name, or `{ type, hashOn?, ...options }`, and
 * where hash balancers take each request's key from. Parsed once, at createMesh; the balancer's
 * own options are validated by its definition's `parseOptions`.
 */
import type { BalancerDefinition, BalancerRegistry } from './balancer.js';
import { describe } from '../core/endpoint-spec.js';
import { InvalidConfigError } from '../core/errors.js';
import { expectObject, join, optNumber, optString, rejectUnknown, type Raw } from '../config/check.js';
import { optDurationMs, type Duration } from '../config/duration.js';

/** Where a hash balancer takes the request's key from. */
export type HashOn =
  | { header: string }
  /**
   * A cookie's value. With `ttlMs`, a request without the cookie gets a new random value, and the
   * response sets it (`Path=path`, `Max-Age`, `HttpOnly`) so the client's next requests stick —
   * Envoy's generated hash cookie.
   */
  | { cookie: string; ttlMs?: Duration; path?: string }
  | { query: string }
  /** Your own key function; return undefined to fall back to a random pick. */
  | ((request: HashRequest) => string | undefined);

/** Options of the built-in balancers, by name (every field optional; defaults in each balancer's file). */
export interface BuiltinBalancers {
  'round-robin': {};
  random: {};
  'least-request': { /** Endpoints sampled per pick. @default 2 */ choiceCount?: number };
  'peak-ewma': { /** Endpoints sampled per pick. @default 2 */ choiceCount?: number; /** Decay of the latency estimate. @default 300 */ decayMs?: Duration };
  prequal: {
    /** Endpoints sampled per pick when the service has more than 8. @default 2 */ choiceCount?: number;
    /** Quantile of requests in flight above which an endpoint is hot (0.5–0.99). @default 0.84 */ hotQuantile?: number;
  };
  'ring-hash': { hashOn?: HashOn; minimumRingSize?: number; maximumRingSize?: number; /** Bounded loads, percent of the mean (≥ 100). */ balanceFactor?: number };
  maglev: { hashOn?: HashOn; /** A prime. @default 65537 */ tableSize?: number; balanceFactor?: number };
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
 * The default balancer: prequal, whose hot-cold rule an idle slow replica cannot fool where
 * peak-ewma's latency × (in-flight + 1) could (bench/tail-latency.mjs measures both; README, Benchmarks).
 */
export const DEFAULT_BALANCER = 'prequal';

export function defaultBalancer(balancers: BalancerRegistry, path: string): ParsedBalancer {
  const def = balancers.get(DEFAULT_BALANCER);
  if (!def) throw new InvalidConfigError(path, `the default balancer "${DEFAULT_BALANCER}" is not registered`);
  return Object.freeze({ name: DEFAULT_BALANCER, def, options: def.parseOptions ? def.parseOptions({}, path) : {}, hashOn: undefined });
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
  const options = def.parseOptions ? def.parseOptions(rest, path) : rest;
  return Object.freeze({ name, def, options, hashOn });
}

function parseHashOn(raw: unknown, path: string): HashOn {
  if (typeof raw === 'function') return raw as HashOn;
  const o = expectObject(raw, path);
  if (typeof o.cookie === 'string' && o.cookie !== '') {
    rejectUnknown(o, ['cookie', 'ttlMs', 'path'], path);
    if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(o.cookie)) throw new InvalidConfigError(join(path, 'cookie'), `expected a cookie name, got ${describe(o.cookie)}`);
    const ttlMs = optDurationMs(o, 'ttlMs', path, undefined, { min: 1000, max: 400 * 86_400_000 });
    const cookiePath = optString(o, 'path', path);
    if (cookiePath !== undefined && !cookiePath.startsWith('/')) throw new InvalidConfigError(join(path, 'path'), `expected a path starting with "/", got ${describe(cookiePath)}`);
    return Object.freeze({ cookie: o.cookie, ...(ttlMs !== undefined ? { ttlMs } : {}), ...(cookiePath !== undefined ? { path: cookiePath } : {}) });
  }
  const keys = Object.keys(o);
  if (keys.length !== 1 || !['header', 'cookie', 'query'].includes(keys[0]!)) {
    throw new InvalidConfigError(path, 'expected exactly one of { header }, { cookie }, { query }, or a function');
  }
  const k = keys[0]!;
  const v = o[k];
  if (typeof v !== 'string' || v === '') throw new InvalidConfigError(join(path, k), `expected a non-empty name, got ${describe(v)}`);
  return (k === 'header' ? { header: v.toLowerCase() } : { [k]: v }) as HashOn;
}
