/**
 * Request headers arrive in the three shapes undici accepts: an object (`fetch` sends one), a flat
 * `[name, value, …]` array, or an iterable of `[name, value]` pairs (meshlet also takes an array of
 * pairs). These helpers read them, set or remove the Host header, and set or add others (the
 * deadline and context headers of the inbound side), without normalising the whole set.
 */
import { errors, type Dispatcher } from 'undici';

type Headers = Dispatcher.DispatchOptions['headers'];

/** First value of header `name` (lower-case), or undefined. */
export function getHeader(headers: Headers, name: string): string | undefined {
  if (headers == null) return undefined;
  if (Array.isArray(headers)) {
    if (headers.length > 0 && Array.isArray(headers[0])) {
      for (const pair of headers as unknown as [unknown, unknown][]) {
        if (String(pair[0]).toLowerCase() === name) return String(pair[1]);
      }
      return undefined;
    }
    for (let i = 0; i + 1 < headers.length; i += 2) {
      if (String(headers[i]).toLowerCase() === name) return String(headers[i + 1]);
    }
    return undefined;
  }
  if (typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') {
    for (const [k, v] of headers as Iterable<[string, string]>) if (String(k).toLowerCase() === name) return String(v);
    return undefined;
  }
  const obj = headers as Record<string, string | string[] | undefined>;
  // Own properties only: a header named like an Object.prototype member ("constructor") that the
  // request does not carry is absent, not the inherited function.
  let v = Object.hasOwn(obj, name) ? obj[name] : undefined;
  if (v === undefined) {
    // for…in over a plain object walks its enumerable keys without allocating (this runs per
    // request when a Host header is looked for); the own-property check skips inherited ones.
    for (const k in obj) {
      if (k.length === name.length && Object.hasOwn(obj, k) && k.toLowerCase() === name) {
        v = obj[k];
        break;
      }
    }
  }
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Every value of header `name` (lower-case), under any spelling of the name: undefined when
 * absent, a string when it appears once, an array (in order) when it is repeated — only then is
 * anything allocated.
 */
export function getHeaderValues(headers: Headers, name: string): string | string[] | undefined {
  found = undefined;
  more = undefined;
  if (headers == null) return undefined;
  if (Array.isArray(headers)) {
    if (headers.length > 0 && Array.isArray(headers[0])) {
      for (const pair of headers as unknown as [unknown, unknown][]) if (String(pair[0]).toLowerCase() === name) take(pair[1]);
    } else {
      for (let i = 0; i + 1 < headers.length; i += 2) if (String(headers[i]).toLowerCase() === name) take(headers[i + 1]);
    }
  } else if (typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') {
    for (const [k, v] of headers as Iterable<[string, string]>) if (String(k).toLowerCase() === name) take(v);
  } else {
    const obj = headers as Record<string, string | string[] | undefined>;
    // Own properties only, as getHeader reads them.
    for (const k in obj) if (k.length === name.length && Object.hasOwn(obj, k) && (k === name || k.toLowerCase() === name)) take(obj[k]);
  }
  return more ?? found;
}

// getHeaderValues' accumulator (synchronous, never re-entered): no closure per call.
let found: string | undefined;
let more: string[] | undefined;

function take(v: unknown): void {
  if (v === undefined) return;
  if (Array.isArray(v)) {
    for (const x of v) take(x);
  } else if (found === undefined) found = String(v);
  else (more ??= [found]).push(String(v));
}

const isHost = (name: unknown): boolean => {
  const s = String(name);
  return s.length === 4 && s.toLowerCase() === 'host';
};

let lastHostOnly: { readonly host: string } | null = null;

/**
 * The headers `{ host: value }` alone, for a request with none of its own: made once and reused
 * while requests keep naming the same host (those to one service name it the same way), so such
 * a request costs no headers object. Frozen: undici only reads them.
 */
export function hostOnly(value: string): Headers {
  const last = lastHostOnly;
  if (last !== null && last.host === value) return last;
  return (lastHostOnly = Object.freeze({ host: value }));
}

/**
 * The headers of a request with Host `host` sent on a pool that writes `pool.host` by itself
 * (core/endpoint.ts): no Host header of its own when they agree — undici then computes nothing
 * for it — else {@link withHost}. A Host the caller gave is never kept.
 */
export function hostHeadersOn(pool: { readonly host: string }, host: string, headers: Headers): Headers {
  return host === pool.host ? withoutHost(headers) : withHost(headers, host);
}

/**
 * `headers` with the Host header set to `value`: a Host header the caller gave, in any case and
 * any shape, is replaced (undici refuses two, and sends the one it gets). No headers: the shared
 * {@link hostOnly} object. The object form is copied once; the other forms become a flat array.
 * @throws InvalidArgumentError (undici's) for an iterable entry that is not a `[name, value]` pair
 */
export function withHost(headers: Headers, value: string): Headers {
  if (headers == null) return hostOnly(value);
  if (isObjectForm(headers)) {
    const obj = headers as Record<string, unknown>;
    if (!objectHasHost(obj)) return { ...obj, host: value } as Headers;
    const out = copyWithoutHost(obj);
    out.host = value;
    return out as Headers;
  }
  const flat = flatWithoutHost(headers);
  if (flat === null) return headers; // an odd flat array: undici refuses it as it is
  flat.push('host', value);
  return flat as Headers;
}

/**
 * `headers` without any Host header, so that undici sends the endpoint's address: the same
 * object when there is none, for the object and flat-array forms (pairs and iterables come back
 * as a new flat array).
 * @throws InvalidArgumentError (undici's) for an iterable entry that is not a `[name, value]` pair
 */
export function withoutHost(headers: Headers): Headers {
  if (headers == null) return headers;
  if (isObjectForm(headers)) {
    const obj = headers as Record<string, unknown>;
    return objectHasHost(obj) ? (copyWithoutHost(obj) as Headers) : headers;
  }
  if (Array.isArray(headers) && !Array.isArray(headers[0])) {
    let found = false;
    for (let i = 0; i < headers.length; i += 2) if (isHost(headers[i])) found = true;
    if (!found) return headers;
  }
  return (flatWithoutHost(headers) ?? headers) as Headers;
}

/** The object form, as undici tells it apart: not an array, and no iterator of its own kind. */
function isObjectForm(headers: object): boolean {
  if (Array.isArray(headers)) return false;
  if (typeof (headers as Partial<Iterable<unknown>>)[Symbol.iterator] !== 'function') return true; // the usual case, one look-up
  const proto = Object.getPrototypeOf(headers) as object | null;
  return !Object.hasOwn(headers, Symbol.iterator) && (proto === null || proto === Object.prototype);
}

function objectHasHost(obj: Record<string, unknown>): boolean {
  for (const k in obj) if (k.length === 4 && k.toLowerCase() === 'host') return true;
  return false;
}

function copyWithoutHost(obj: Record<string, unknown>, drop: (name: unknown) => boolean = isHost): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(obj)) if (!drop(k)) out[k] = obj[k];
  return out;
}

/**
 * A flat `[name, value, …]` copy without Host headers (or those `drop` names), from a flat array,
 * an array of pairs or an iterable of pairs (read once: a generator is not read twice); null for
 * an odd flat array.
 */
function flatWithoutHost(headers: object, drop: (name: unknown) => boolean = isHost): unknown[] | null {
  const out: unknown[] = [];
  if (Array.isArray(headers) && !Array.isArray(headers[0])) {
    if (headers.length % 2 !== 0) return null;
    for (let i = 0; i < headers.length; i += 2) if (!drop(headers[i])) out.push(headers[i], headers[i + 1]);
    return out;
  }
  for (const pair of headers as Iterable<unknown>) {
    if (!Array.isArray(pair) || pair.length !== 2) throw new errors.InvalidArgumentError('headers must be in key-value pair format');
    if (!drop(pair[0])) out.push(pair[0], pair[1]);
  }
  return out;
}

/**
 * Call `fn` with each header's name and value, in order, whatever the shape (a value the object
 * form gives as an array is one call per element).
 * @throws InvalidArgumentError (undici's) for an iterable entry that is not a `[name, value]` pair
 */
export function forEachHeader(headers: Headers, fn: (name: string, value: string) => void): void {
  if (headers == null) return;
  const each = (name: unknown, value: unknown): void => {
    if (value === undefined || value === null) return;
    if (Array.isArray(value)) for (const v of value) fn(String(name), String(v));
    else fn(String(name), String(value));
  };
  if (isObjectForm(headers)) {
    const obj = headers as Record<string, unknown>;
    for (const k of Object.keys(obj)) each(k, obj[k]);
    return;
  }
  if (Array.isArray(headers) && !Array.isArray(headers[0])) {
    for (let i = 0; i + 1 < headers.length; i += 2) each(headers[i], headers[i + 1]);
    return;
  }
  for (const pair of headers as Iterable<unknown>) {
    if (!Array.isArray(pair) || pair.length !== 2) throw new errors.InvalidArgumentError('headers must be in key-value pair format');
    each(pair[0], pair[1]);
  }
}

/** True when `name`, in any case, is one of `lowerNames`' names (a flat `[name, value, …]` list). */
function named(name: unknown, lowerNames: readonly string[]): boolean {
  const s = String(name);
  for (let i = 0; i < lowerNames.length; i += 2) if (s.length === lowerNames[i]!.length && s.toLowerCase() === lowerNames[i]) return true;
  return false;
}

/**
 * `headers` with each header of `set` (a flat `[name, value, …]` list, lower-case names) in
 * place of any of that name, in any case and any shape. The object form is copied once; the other
 * forms become a flat array.
 * @throws InvalidArgumentError (undici's) for an iterable entry that is not a `[name, value]` pair
 */
export function withHeaders(headers: Headers, set: readonly string[]): Headers {
  const drop = (name: unknown): boolean => named(name, set);
  if (headers == null || isObjectForm(headers)) {
    const out = headers == null ? {} : copyWithoutHost(headers as Record<string, unknown>, drop);
    for (let i = 0; i + 1 < set.length; i += 2) out[set[i]!] = set[i + 1];
    return out as Headers;
  }
  const flat = flatWithoutHost(headers, drop);
  if (flat === null) return headers; // an odd flat array: undici refuses it as it is
  flat.push(...set);
  return flat as Headers;
}

/**
 * `headers` plus each header of `add` (a flat `[name, value, …]` list, lower-case names) that it
 * does not carry under any spelling: what the caller set is never replaced. The same object when
 * nothing is missing (an iterable comes back flattened); else the object form is copied once and
 * the other forms become a flat array.
 * @throws InvalidArgumentError (undici's) for an iterable entry that is not a `[name, value]` pair
 */
export function withMissingHeaders(headers: Headers, add: readonly string[]): Headers {
  if (add.length === 0) return headers;
  // An iterable is read once, into a flat array, before it is looked at (a generator cannot be read twice).
  const h = headers == null || isObjectForm(headers) || Array.isArray(headers) ? headers : (flatWithoutHost(headers, () => false) as Headers);
  let missing: string[] | null = null;
  for (let i = 0; i + 1 < add.length; i += 2) if (getHeader(h, add[i]!) === undefined) (missing ??= []).push(add[i]!, add[i + 1]!);
  if (missing === null) return h;
  if (h == null || isObjectForm(h)) {
    const out: Record<string, unknown> = h == null ? {} : { ...(h as Record<string, unknown>) };
    for (let i = 0; i < missing.length; i += 2) out[missing[i]!] = missing[i + 1];
    return out as Headers;
  }
  const flat = flatWithoutHost(h, () => false);
  if (flat === null) return h; // an odd flat array: undici refuses it as it is
  flat.push(...missing);
  return flat as Headers;
}
