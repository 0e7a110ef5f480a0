/**
 * A request's 64-bit hash for hash balancers, computed as Envoy's hash policies compute it
 * (`source/common/http/hash_policy.cc`), so a sidecar and meshlet agree on it:
 *  - header: XXH64 of its value, seed 0; a repeated header's values sorted, each hashed with the
 *    previous result as seed (`HashUtil::xxHash64` over a span);
 *  - cookie: XXH64 of its value (double quotes around it stripped; an empty value is no value);
 *  - query parameter: XXH64 of the first value, as it is in the path (not percent-decoded);
 *  - several policies: each value's hash XORed into the previous result rotated left by 1 bit;
 *    once a `terminal` policy is reached with a result, the rest are not evaluated.
 * Header and path text is hashed as the Latin-1 bytes undici sends (xxhash64.ts); a key
 * function's result as UTF-8. Generated cookies and errors from key functions are the hash
 * layer's business (layers/hash.ts).
 */
import type { Dispatcher } from 'undici';
import { xxh64Latin1 } from './xxhash64.js';
import type { HashOn, HashPolicy, HashRequest } from './config.js';
import { getHeader, getHeaderValues } from '../core/headers.js';

/** A header, cookie or query policy: not a key function. */
export type FieldPolicy = Exclude<HashPolicy, (request: HashRequest) => string | undefined>;

/** Hash of `policy`'s value into `out` (upper, lower 32 bits); false when the request has none. */
export function fieldHash(opts: Dispatcher.DispatchOptions, policy: FieldPolicy, out: Uint32Array): boolean {
  if ('header' in policy) {
    const v = getHeaderValues(opts.headers, policy.header);
    if (v === undefined) return false;
    if (typeof v === 'string') {
      xxh64Latin1(v, 0, 0, out);
      return true;
    }
    // A fresh array from getHeaderValues: sorting it in place is safe.
    v.sort();
    out[0] = 0;
    out[1] = 0;
    for (const x of v) xxh64Latin1(x, out[0]!, out[1]!, out);
    return true;
  }
  const v = 'cookie' in policy ? requestCookie(opts.headers, policy.cookie) : queryValue(opts.path, policy.query);
  if (v === undefined) return false;
  xxh64Latin1(v, 0, 0, out);
  return true;
}

/**
 * Envoy's `HashPolicyImpl::generateHash`: each policy in turn, `policyHash` writing its value's
 * hash into `part` (false when it yields none); each result folded into `out` as
 * out = rotl(out, 1) XOR part (the first one taken as it is); after a `terminal` policy, stop if
 * there is a result. Returns false when no policy yielded a hash (`out` is then unspecified).
 */
export function evaluate(hashOn: HashOn, out: Uint32Array, part: Uint32Array, policyHash: (policy: HashPolicy) => boolean): boolean {
  const list = Array.isArray(hashOn);
  const n = list ? hashOn.length : 1;
  let found = false;
  for (let i = 0; i < n; i++) {
    const policy = (list ? (hashOn as readonly HashPolicy[])[i] : hashOn) as HashPolicy;
    if (policyHash(policy)) {
      if (found) {
        const h = out[0]!;
        const l = out[1]!;
        out[0] = (((h << 1) | (l >>> 31)) ^ part[0]!) >>> 0;
        out[1] = (((l << 1) | (h >>> 31)) ^ part[1]!) >>> 0;
      } else {
        out[0] = part[0]!;
        out[1] = part[1]!;
      }
      found = true;
    }
    if (found && typeof policy !== 'function' && policy.terminal === true) break;
  }
  return found;
}

/** What a key function sees of the request. */
export function requestView(opts: Dispatcher.DispatchOptions): HashRequest {
  return { method: opts.method, path: opts.path, header: (name) => getHeader(opts.headers, name.toLowerCase()) };
}

/** The value of cookie `name` across the request's Cookie headers, or undefined when absent or empty. */
export function requestCookie(headers: Dispatcher.DispatchOptions['headers'], name: string): string | undefined {
  const v = getHeaderValues(headers, 'cookie');
  if (v === undefined) return undefined;
  if (typeof v === 'string') return cookieValue(v, name) || undefined;
  for (const header of v) {
    const c = cookieValue(header, name);
    if (c !== undefined) return c || undefined;
  }
  return undefined;
}

/**
 * The first `name=value` of a Cookie header, parsed as Envoy parses it: `;`-separated, spaces
 * before the name skipped, the value as it stands with one pair of surrounding double quotes
 * removed. Undefined when the header has no such cookie.
 */
export function cookieValue(header: string, name: string): string | undefined {
  let start = 0;
  while (start < header.length) {
    let end = header.indexOf(';', start);
    if (end < 0) end = header.length;
    const eq = header.indexOf('=', start);
    if (eq >= 0 && eq < end) {
      let k = start;
      while (k < eq && header.charCodeAt(k) === 32) k++;
      if (eq - k === name.length && header.startsWith(name, k)) {
        let vs = eq + 1;
        let ve = end;
        if (ve - vs >= 2 && header.charCodeAt(vs) === 34 && header.charCodeAt(ve - 1) === 34) {
          vs++;
          ve--;
        }
        return header.slice(vs, ve);
      }
    }
    start = end + 1;
  }
  return undefined;
}

/** The first value of query parameter `name` in `path`, undecoded (`''` for a bare `?name`), or undefined. */
export function queryValue(path: string, name: string): string | undefined {
  const q = path.indexOf('?');
  if (q < 0) return undefined;
  let start = q + 1;
  while (start < path.length) {
    let end = path.indexOf('&', start);
    if (end < 0) end = path.length;
    const eq = path.indexOf('=', start);
    const nameEnd = eq >= 0 && eq < end ? eq : end;
    if (nameEnd - start === name.length && path.startsWith(name, start)) return nameEnd === end ? '' : path.slice(eq + 1, end);
    start = end + 1;
  }
  return undefined;
}
