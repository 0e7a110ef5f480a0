/**
 * The hash of a request for hash balancers: its key from a header, a cookie, a query parameter or
 * the caller's function, hashed with {@link hash32}. A request without a key gets a random hash
 * (Envoy does the same when no hash policy yields a value).
 */
import type { Dispatcher } from 'undici';
import { hash32 } from './hash.js';
import type { HashOn, HashRequest } from './config.js';
import { getHeader } from '../core/headers.js';

/** The request's key under `hashOn`, or undefined. Throws what a key function throws. */
export function hashKeyOf(opts: Dispatcher.DispatchOptions, hashOn: HashOn | undefined): string | undefined {
  if (hashOn === undefined) return undefined;
  if (typeof hashOn === 'function') {
    const view: HashRequest = {
      method: opts.method,
      path: opts.path,
      header: (name) => getHeader(opts.headers, name.toLowerCase()),
    };
    return hashOn(view);
  }
  if ('header' in hashOn) return getHeader(opts.headers, hashOn.header);
  if ('cookie' in hashOn) return cookieValue(getHeader(opts.headers, 'cookie'), hashOn.cookie);
  return queryValue(opts.path, hashOn.query);
}

/** 32-bit hash of the request's key, or a random one when it has none. */
export function requestHash(key: string | undefined, random: () => number): number {
  return key === undefined ? (random() * 0x1_0000_0000) >>> 0 : hash32(key);
}

export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function queryValue(path: string, name: string): string | undefined {
  const q = path.indexOf('?');
  if (q < 0) return undefined;
  return new URLSearchParams(path.slice(q + 1)).get(name) ?? undefined;
}
