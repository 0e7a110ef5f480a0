/**
 * Request matching for routes, with Istio's VirtualService semantics: a route matches when any of
 * its `match` blocks matches (OR); a block matches when every condition in it does (AND).
 * String conditions are `{ exact }`, `{ prefix }`, `{ regex }` (RE2 syntax, linear-time, and a
 * whole-value match, as Envoy's safe_regex: routing/regex.ts) or, for headers and query parameters,
 * `{ present: true }`.
 *
 * A header that a request carries more than once is matched as Envoy's HeaderUtility::matchHeaders
 * matches it: all its values joined with `,` in order (getAllOfHeaderAsString), so `x-rep: a` then
 * `x-rep: b` is `a,b` — which `{ exact: 'b' }` does not match, in either order. A query parameter
 * given twice is matched on its first value, as Envoy's QueryParameterMatcher reads it.
 */
import type { Dispatcher } from 'undici';
import { InvalidConfigError } from '../core/errors.js';
import { describe } from '../core/endpoint-spec.js';
import { getHeaderValues } from '../core/headers.js';
import { expectObject, join, rejectUnknown } from '../config/check.js';
import { compileFullMatch } from './regex.js';

/** A condition on a string. */
export type StringMatch = { exact: string } | { prefix: string } | { regex: string } | { present: true };

/** One match block; every given condition must hold. */
export interface RouteMatch {
  /** Header conditions by name (case-insensitive). */
  headers?: Record<string, StringMatch>;
  /** Condition on the path (without the query). */
  uri?: StringMatch;
  /** Condition on the method (`{ exact: 'GET' }`), or a method name. */
  method?: StringMatch | string;
  /** Query parameter conditions by name. */
  queryParams?: Record<string, StringMatch>;
}

type Test = (value: string | undefined) => boolean;

/** A compiled match block. */
export type Matcher = (opts: Dispatcher.DispatchOptions) => boolean;

function compileString(raw: unknown, path: string, allowPresent: boolean): Test {
  const o = expectObject(raw, path);
  const keys = Object.keys(o);
  const allowed = allowPresent ? ['exact', 'prefix', 'regex', 'present'] : ['exact', 'prefix', 'regex'];
  if (keys.length !== 1 || !allowed.includes(keys[0]!)) {
    throw new InvalidConfigError(path, `expected exactly one of ${allowed.map((k) => `{ ${k} }`).join(', ')}`);
  }
  const k = keys[0]!;
  const v = o[k];
  if (k === 'present') {
    if (v !== true && v !== false) throw new InvalidConfigError(join(path, k), `expected true or false, got ${describe(v)}`);
    return v ? (s) => s !== undefined : (s) => s === undefined;
  }
  if (typeof v !== 'string') throw new InvalidConfigError(join(path, k), `expected a string, got ${describe(v)}`);
  if (k === 'exact') return (s) => s === v;
  if (k === 'prefix') return (s) => s !== undefined && s.startsWith(v);
  const re = compileFullMatch(v, join(path, k));
  return (s) => s !== undefined && re.test(s);
}

/** A header's value as Envoy matches it: absent, its one value, or its values joined with `,` (the only case that allocates). */
function headerValue(headers: Dispatcher.DispatchOptions['headers'], name: string): string | undefined {
  const v = getHeaderValues(headers, name);
  return typeof v === 'object' ? v.join(',') : v;
}

function splitPath(path: string): [string, string] {
  const q = path.indexOf('?');
  return q < 0 ? [path, ''] : [path.slice(0, q), path.slice(q + 1)];
}

/** Compile one match block. */
export function compileMatch(raw: unknown, path: string): Matcher {
  const o = expectObject(raw, path);
  rejectUnknown(o, ['headers', 'uri', 'method', 'queryParams'], path);
  const tests: Matcher[] = [];
  if (o.headers !== undefined) {
    for (const [name, cond] of Object.entries(expectObject(o.headers, join(path, 'headers')))) {
      const t = compileString(cond, join(join(path, 'headers'), name), true);
      const lower = name.toLowerCase();
      tests.push((opts) => t(headerValue(opts.headers, lower)));
    }
  }
  if (o.uri !== undefined) {
    const t = compileString(o.uri, join(path, 'uri'), false);
    tests.push((opts) => t(splitPath(opts.path)[0]));
  }
  if (o.method !== undefined) {
    const t = compileString(typeof o.method === 'string' ? { exact: o.method } : o.method, join(path, 'method'), false);
    tests.push((opts) => t(opts.method));
  }
  if (o.queryParams !== undefined) {
    for (const [name, cond] of Object.entries(expectObject(o.queryParams, join(path, 'queryParams')))) {
      const t = compileString(cond, join(join(path, 'queryParams'), name), true);
      tests.push((opts) => {
        const q = splitPath(opts.path)[1];
        return t(q === '' ? undefined : (new URLSearchParams(q).get(name) ?? undefined));
      });
    }
  }
  if (tests.length === 1) return tests[0]!;
  return (opts) => {
    for (const t of tests) if (!t(opts)) return false;
    return true;
  };
}
