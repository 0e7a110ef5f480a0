/**
 * A route's rewrite of the request (Istio's HTTPRewrite, Envoy's `prefix_rewrite`,
 * `regex_rewrite` and `host_rewrite_literal`), before it is sent:
 *  - `uri` replaces the part of the path the route's match block matched: a `prefix` condition's
 *    prefix, an `exact` or `regex` condition's whole path; a block without a `uri` condition (and a
 *    route without match blocks) matched the prefix `/`, as Istio writes it for Envoy. The query
 *    string is kept.
 *  - `uriRegexRewrite` replaces every match of an RE2 pattern in the path (the query string kept
 *    aside and put back), with `\1`-style groups in the substitution.
 *  - `uri` must start with "/"; a regex rewrite whose result does not ends the request with
 *    INVALID_REQUEST before anything is sent (route-actions.ts).
 *  - `authority` is the Host header the endpoints get.
 */
import { InvalidConfigError } from '../core/errors.js';
import { describe } from '../core/endpoint-spec.js';
import { expectObject, join, optString, rejectUnknown, type Raw } from '../config/check.js';
import { compileReplaceAll } from './regex.js';

/** How a route rewrites its requests. */
export interface RewriteConfig {
  /** Replace the matched part of the path: a prefix condition's prefix, an exact or regex condition's whole path, else the leading `/`. */
  uri?: string;
  /** Replace every match of `match` (RE2) in the path by `rewrite` (`\1`…`\9` a group, `\0` the match). */
  uriRegexRewrite?: { match: string; rewrite: string };
  /** The Host header sent to the endpoints (whatever `hostHeader` says). */
  authority?: string;
}

/** Per match block: the length of the prefix it matched, or -1 when it matched the whole path. */
export type MatchedParts = readonly number[];

/** `path` with the part a block matched (its `matched` entry) replaced by `by`; the query kept. */
export function replaceMatched(path: string, matched: number, by: string): string {
  if (matched >= 0) return by + path.slice(matched);
  const q = path.indexOf('?');
  return q < 0 ? by : by + path.slice(q);
}

/** What each match block matches of the path (from validated match blocks), for `uri` rewrites. */
export function matchedParts(match: readonly Raw[] | undefined): MatchedParts {
  if (match === undefined) return [1];
  return match.map((m) => {
    const uri = m.uri as Raw | undefined;
    if (uri === undefined) return 1;
    return typeof uri.prefix === 'string' ? uri.prefix.length : -1;
  });
}

export interface CompiledRewrite {
  /** The new path for a request that matched block `block`, or null when the path stays. */
  readonly path: ((path: string, block: number) => string) | null;
  readonly authority: string | null;
  readonly json: RewriteConfig;
}

const PATH_TEXT = /^[\x21-\x7e]*$/;
const AUTHORITY = /^[^\s/?#@\\]+$/;

/** A path-like string from config: printable ASCII without spaces. */
export function pathText(raw: Raw, key: string, path: string): string | undefined {
  const v = optString(raw, key, path);
  if (v !== undefined && !PATH_TEXT.test(v)) throw new InvalidConfigError(join(path, key), `expected a URL path (printable ASCII, no spaces), got ${describe(v)}`);
  return v;
}

/** A host (and port) from config. */
export function authorityText(raw: Raw, key: string, path: string): string | undefined {
  const v = optString(raw, key, path);
  if (v !== undefined && !AUTHORITY.test(v)) throw new InvalidConfigError(join(path, key), `expected a host name, optionally with a port, got ${describe(v)}`);
  return v;
}

export function parseRewrite(raw: unknown, path: string, parts: MatchedParts): CompiledRewrite | null {
  if (raw === undefined) return null;
  const o = expectObject(raw, path);
  rejectUnknown(o, ['uri', 'uriRegexRewrite', 'authority'], path);
  const uri = pathText(o, 'uri', path);
  const authority = authorityText(o, 'authority', path) ?? null;
  const json: RewriteConfig = {};
  let rewritePath: CompiledRewrite['path'] = null;
  if (uri !== undefined && o.uriRegexRewrite !== undefined) throw new InvalidConfigError(join(path, 'uriRegexRewrite'), 'give either "uri" or "uriRegexRewrite", not both');
  if (uri !== undefined) {
    // It replaces the start of the path: anything but "/…" leaves no path, and "http://…" is an
    // absolute-form target a proxy behind the endpoint would follow.
    if (uri.charCodeAt(0) !== 0x2f) throw new InvalidConfigError(join(path, 'uri'), `expected a path starting with "/", got ${describe(uri)}`);
    json.uri = uri;
    rewritePath = (p, block) => replaceMatched(p, parts[block]!, uri);
  } else if (o.uriRegexRewrite !== undefined) {
    const rp = join(path, 'uriRegexRewrite');
    const r = expectObject(o.uriRegexRewrite, rp);
    rejectUnknown(r, ['match', 'rewrite'], rp);
    for (const k of ['match', 'rewrite'] as const) {
      if (typeof r[k] !== 'string') throw new InvalidConfigError(join(rp, k), `expected a string, got ${describe(r[k])}`);
    }
    const replace = compileReplaceAll(r.match as string, r.rewrite as string, rp);
    json.uriRegexRewrite = { match: r.match as string, rewrite: r.rewrite as string };
    rewritePath = (p) => {
      const q = p.indexOf('?');
      return q < 0 ? replace(p) : replace(p.slice(0, q)) + p.slice(q);
    };
  }
  if (authority !== null) json.authority = authority;
  if (rewritePath === null && authority === null) throw new InvalidConfigError(path, 'expected "uri", "uriRegexRewrite" or "authority"');
  return Object.freeze({ path: rewritePath, authority, json });
}
