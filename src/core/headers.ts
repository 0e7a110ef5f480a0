/**
 * Request headers arrive in the three shapes undici accepts: an object (`fetch` sends one), a flat
 * `[name, value, …]` array, or an iterable of `[name, value]` pairs. These helpers read and extend
 * them without normalising the whole set.
 */
import type { Dispatcher } from 'undici';

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

/** `headers` with `host: value` added unless a Host header is already there. */
export function withHost(headers: Headers, value: string): Headers {
  if (headers == null) return { host: value };
  if (getHeader(headers, 'host') !== undefined) return headers;
  if (Array.isArray(headers)) {
    if (headers.length > 0 && Array.isArray(headers[0])) {
      return [...(headers as unknown as string[][]).flat(), 'host', value] as Headers;
    }
    return [...headers, 'host', value] as Headers;
  }
  if (typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') {
    const flat: string[] = [];
    for (const [k, v] of headers as Iterable<[string, string]>) flat.push(k, v);
    flat.push('host', value);
    return flat as Headers;
  }
  return { ...(headers as Record<string, string>), host: value };
}
