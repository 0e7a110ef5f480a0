/**
 * A route's header operations (Istio's `headers.request` / `headers.response`, Envoy's
 * `request_headers_to_add/remove` and `response_headers_to_add/remove`): `remove` drops every value
 * of a header, `set` replaces every value with one (adding it when absent), `add` appends a value
 * to those already there. They apply in Envoy's order — remove, then set, then add — so a header
 * both removed and added ends up with the added value only.
 *
 * Compiled once when the config is parsed; applied only to requests of a route that has some
 * (the result is a new header object with lower-case names; the caller's is never changed).
 */
import type { Dispatcher } from 'undici';
import { InvalidConfigError } from '../core/errors.js';
import { describe } from '../core/endpoint-spec.js';
import { forEachHeader } from '../core/headers.js';
import { expectList, expectObject, join, rejectUnknown } from '../config/check.js';

/** Header operations on a request or a response. */
export interface HeaderOperations {
  /** Headers to replace (every value) with this value, or to add when absent. */
  set?: Record<string, string>;
  /** Values to append, after those the header already has. */
  add?: Record<string, string>;
  /** Headers to remove. */
  remove?: string[];
}

/** A route's header operations. */
export interface RouteHeaders {
  /** On the request, before it is sent (every attempt, hedge and mirror copy). */
  request?: HeaderOperations;
  /** On the response the caller gets (from an endpoint, or a redirect or direct response). */
  response?: HeaderOperations;
}

/** Header operations, compiled: names lower-case. */
export interface CompiledHeaderOps {
  /** Names whose values are dropped first: the removed ones and the set ones. */
  readonly drop: ReadonlySet<string>;
  readonly set: readonly (readonly [string, string])[];
  readonly add: readonly (readonly [string, string])[];
  /** The operations as configured (names lower-case), for `toJSON`. */
  readonly json: HeaderOperations;
}

type HeaderObject = Record<string, string | string[]>;

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Framing and connection headers belong to the HTTP client: undici refuses some of them, and a
// changed content-length or transfer-encoding would corrupt the message.
const FRAMING = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'expect', 'te', 'trailer', 'proxy-connection']);

/** True for a framing or connection header, which header operations may not touch (lower-case name). */
export function isClientHeader(lower: string): boolean {
  return FRAMING.has(lower);
}

/** A header operation's name (lower-cased). @throws InvalidConfigError naming `path` */
export function headerName(name: unknown, path: string, side: 'request' | 'response'): string {
  if (typeof name !== 'string' || !TOKEN.test(name)) throw new InvalidConfigError(path, `expected a header name, got ${describe(name)}`);
  const lower = name.toLowerCase();
  if (FRAMING.has(lower)) throw new InvalidConfigError(path, `"${lower}" is the HTTP client's to set`);
  if (side === 'request' && lower === 'host') throw new InvalidConfigError(path, 'the Host header is set with rewrite.authority');
  return lower;
}

/** A header operation's value. @throws InvalidConfigError naming `path` */
export function headerValue(v: unknown, path: string): string {
  if (typeof v !== 'string') throw new InvalidConfigError(path, `expected a string, got ${describe(v)}`);
  if (/[\r\n\0]/.test(v)) throw new InvalidConfigError(path, 'a header value has no CR, LF or NUL');
  return v;
}

function parseOps(raw: unknown, path: string, side: 'request' | 'response'): CompiledHeaderOps | null {
  if (raw === undefined) return null;
  const o = expectObject(raw, path);
  rejectUnknown(o, ['set', 'add', 'remove'], path);
  const table = (key: 'set' | 'add'): [string, string][] => {
    if (o[key] === undefined) return [];
    const p = join(path, key);
    return Object.entries(expectObject(o[key], p)).map(([k, v]) => [headerName(k, join(p, k), side), headerValue(v, join(p, k))]);
  };
  const set = table('set');
  const add = table('add');
  const remove = o.remove === undefined ? [] : expectList(o.remove, join(path, 'remove'), 'a list of header names').map((n, i) => headerName(n, join(join(path, 'remove'), i), side));
  if (set.length + add.length + remove.length === 0) return null;
  const json: HeaderOperations = {};
  if (set.length > 0) json.set = Object.fromEntries(set);
  if (add.length > 0) json.add = Object.fromEntries(add);
  if (remove.length > 0) json.remove = remove;
  return Object.freeze({ drop: new Set([...remove, ...set.map(([k]) => k)]), set, add, json });
}

/** Parse a route's `headers`. */
export function parseRouteHeaders(raw: unknown, path: string): { request: CompiledHeaderOps | null; response: CompiledHeaderOps | null } {
  if (raw === undefined) return { request: null, response: null };
  const o = expectObject(raw, path);
  rejectUnknown(o, ['request', 'response'], path);
  return { request: parseOps(o.request, join(path, 'request'), 'request'), response: parseOps(o.response, join(path, 'response'), 'response') };
}

function append(out: HeaderObject, name: string, value: string): void {
  const had = Object.hasOwn(out, name) ? out[name] : undefined;
  const v = had === undefined ? value : Array.isArray(had) ? [...had, value] : [had, value];
  // defineProperty: a header named "__proto__" is a header like any other.
  Object.defineProperty(out, name, { value: v, enumerable: true, writable: true, configurable: true });
}

function apply(ops: CompiledHeaderOps, each: (fn: (name: string, value: string) => void) => void): HeaderObject {
  const out: HeaderObject = {};
  each((name, value) => {
    const lower = name.toLowerCase();
    if (!ops.drop.has(lower)) append(out, lower, value);
  });
  for (const [k, v] of ops.set) append(out, k, v);
  for (const [k, v] of ops.add) append(out, k, v);
  return out;
}

/** The request's headers (any shape undici takes) after `ops`, as a new object. */
export function editRequestHeaders(headers: Dispatcher.DispatchOptions['headers'], ops: CompiledHeaderOps): HeaderObject {
  return apply(ops, (fn) => forEachHeader(headers, fn));
}

/** Response headers (undici's object form) after `ops`, as a new object. */
export function editResponseHeaders(headers: Record<string, string | string[] | undefined>, ops: CompiledHeaderOps): HeaderObject {
  return apply(ops, (fn) => forEachHeader(headers as Dispatcher.DispatchOptions['headers'], fn));
}
