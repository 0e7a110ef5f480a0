/**
 * Routes that answer by themselves, without contacting an endpoint (Istio's `redirect` and
 * `directResponse`, Envoy's redirect and direct_response route actions):
 *  - a redirect answers 301 (or `redirectCode`) with a `location` built as Envoy builds it: the
 *    request's scheme, host and path, each replaced when configured — `uri` replaces the whole path
 *    (the request's query kept unless `uri` has one), `prefixRewrite` only the part the match block
 *    matched (as `rewrite.uri`); a `port` replaces the request's (and is left out of the location
 *    when it is the scheme's default);
 *  - a direct response answers `status` with `body` (text/plain) or with no body.
 * The route's response header operations apply to both.
 */
import { InvalidConfigError } from '../core/errors.js';
import { describe } from '../core/endpoint-spec.js';
import { expectObject, join, optNumber, optString, rejectUnknown } from '../config/check.js';
import { authorityText, pathText, replaceMatched, type MatchedParts } from '../routing/rewrite.js';
import { editResponseHeaders } from '../routing/header-ops.js';
import type { Call } from '../request/call.js';

/** Answer with a redirect (Istio's HTTPRedirect). */
export interface RedirectConfig {
  /** The path of the location, replacing the request's whole path; the request's query is kept unless this has one. */
  uri?: string;
  /** Replace only the part of the path the route matched (as `rewrite.uri`). */
  prefixRewrite?: string;
  /** The host of the location; the request's when unset. */
  authority?: string;
  /** The scheme of the location, e.g. `https`; the request's when unset. */
  scheme?: string;
  /**
   * The port of the location, or `'request'` for the request's; the scheme's default port is left
   * out. Unset: the request's host keeps its port.
   */
  port?: number | 'request';
  /** The status: 301, 302, 303, 307 or 308. @default 301 */
  redirectCode?: number;
}

/** Answer with a fixed response (Istio's HTTPDirectResponse). */
export interface DirectResponseConfig {
  /** The status, 200–599. */
  status: number;
  /** The body (sent as text/plain); none when unset. At most 1 MiB. */
  body?: string;
}

/** A compiled local answer: answers `call`, which matched match block `block`. */
export interface LocalAnswer {
  (call: Call, block: number): void;
  readonly json: { redirect?: RedirectConfig; directResponse?: DirectResponseConfig };
}

const CODES = [301, 302, 303, 307, 308];
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*$/;
const DEFAULT_PORT: Readonly<Record<string, string>> = { http: '80', https: '443' };
const MAX_BODY = 1024 * 1024;

function requestScheme(call: Call): string {
  const origin = call.opts.origin;
  const text = typeof origin === 'string' ? origin : String(origin);
  return text.startsWith('https:') ? 'https' : 'http';
}

/** `host` without its port, and the port ('' when none). */
function splitHost(host: string): [string, string] {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return host.charCodeAt(end + 1) === 58 ? [host.slice(0, end + 1), host.slice(end + 2)] : [host, ''];
  }
  const colon = host.lastIndexOf(':');
  return colon < 0 ? [host, ''] : [host.slice(0, colon), host.slice(colon + 1)];
}

/** A redirect's `scheme` (at `path`), lower-cased. @throws InvalidConfigError when it is no URL scheme */
export function redirectScheme(v: string | undefined, path: string): string | undefined {
  if (v !== undefined && !SCHEME.test(v)) throw new InvalidConfigError(path, `expected a URL scheme such as "https", got ${describe(v)}`);
  return v?.toLowerCase();
}

function parseRedirect(raw: unknown, path: string, parts: MatchedParts): LocalAnswer {
  const o = expectObject(raw, path);
  rejectUnknown(o, ['uri', 'prefixRewrite', 'authority', 'scheme', 'port', 'redirectCode'], path);
  const uri = pathText(o, 'uri', path);
  const prefixRewrite = pathText(o, 'prefixRewrite', path);
  if (uri !== undefined && prefixRewrite !== undefined) throw new InvalidConfigError(join(path, 'prefixRewrite'), 'give either "uri" or "prefixRewrite", not both');
  const authority = authorityText(o, 'authority', path);
  const scheme = redirectScheme(optString(o, 'scheme', path), join(path, 'scheme'));
  const port = o.port === 'request' ? 'request' : o.port === undefined ? undefined : String(optNumber(o, 'port', path, 0, { integer: true, min: 1, max: 65_535 }));
  const code = optNumber(o, 'redirectCode', path, 301, { integer: true });
  if (!CODES.includes(code)) throw new InvalidConfigError(join(path, 'redirectCode'), `expected one of ${CODES.join(', ')}, got ${describe(o.redirectCode)}`);
  const uriHasQuery = uri !== undefined && uri.includes('?');
  const json: RedirectConfig = { ...(uri !== undefined && { uri }), ...(prefixRewrite !== undefined && { prefixRewrite }), ...(authority !== undefined && { authority }) };
  Object.assign(json, { ...(scheme !== undefined && { scheme }), ...(o.port !== undefined && { port: o.port as number | 'request' }), redirectCode: code });
  const answer = (call: Call, block: number): void => {
    const newScheme = scheme ?? requestScheme(call);
    const [requestHost, requestPort] = splitHost(call.host);
    const newPort = port === 'request' ? requestPort || DEFAULT_PORT[requestScheme(call)]! : port;
    // As Envoy: the request's port stays unless a port is given; the scheme's default is left out.
    const host = authority ?? (newPort === undefined ? call.host : requestHost);
    const hostPort = newPort === undefined || newPort === DEFAULT_PORT[newScheme] ? '' : `:${newPort}`;
    const requestPath = call.opts.path;
    let p = requestPath;
    if (uri !== undefined) p = uriHasQuery ? uri : replaceMatched(requestPath, -1, uri);
    else if (prefixRewrite !== undefined) p = replaceMatched(requestPath, parts[block]!, prefixRewrite);
    if (!p.startsWith('/')) p = `/${p}`;
    send(call, code, '', { location: `${newScheme}://${host}${hostPort}${p}` });
  };
  return Object.assign(answer, { json: { redirect: json } });
}

function parseDirectResponse(raw: unknown, path: string): LocalAnswer {
  const o = expectObject(raw, path);
  rejectUnknown(o, ['status', 'body'], path);
  if (o.status === undefined) throw new InvalidConfigError(join(path, 'status'), 'required');
  const status = optNumber(o, 'status', path, 0, { integer: true, min: 200, max: 599 });
  if (o.body !== undefined && typeof o.body !== 'string') throw new InvalidConfigError(join(path, 'body'), `expected a string, got ${describe(o.body)}`);
  const body = o.body as string | undefined;
  if (body !== undefined && Buffer.byteLength(body) > MAX_BODY) throw new InvalidConfigError(join(path, 'body'), `expected at most ${MAX_BODY} bytes`);
  const answer = (call: Call): void => send(call, status, body ?? '', body === undefined ? {} : { 'content-type': 'text/plain' });
  return Object.assign(answer, { json: { directResponse: { status, ...(body !== undefined && { body }) } } });
}

function send(call: Call, status: number, body: string, headers: Record<string, string>): void {
  const ops = call.responseHeaders;
  call.respond(status, body, ops === null ? headers : editResponseHeaders(headers, ops));
}

/** A route's `redirect` or `directResponse` (at most one), or null. */
export function parseLocalAnswer(r: Record<string, unknown>, path: string, parts: MatchedParts): LocalAnswer | null {
  if (r.redirect !== undefined && r.directResponse !== undefined) throw new InvalidConfigError(join(path, 'directResponse'), 'give either "redirect" or "directResponse", not both');
  if (r.redirect !== undefined) return parseRedirect(r.redirect, join(path, 'redirect'), parts);
  if (r.directResponse !== undefined) return parseDirectResponse(r.directResponse, join(path, 'directResponse'));
  return null;
}
