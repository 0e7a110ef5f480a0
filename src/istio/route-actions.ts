/**
 * An HTTPRoute's actions besides its destinations — `headers`, `rewrite`, `redirect`,
 * `directResponse` — into a meshlet route, one function per field, as Istio writes them for
 * Envoy (pilot's route.go):
 *  - a Host or `:authority` in `headers.request.set`/`add` becomes the Host rewrite (set wins
 *    over add, `rewrite.authority` over both); other pseudo-headers, and Host in responses, are
 *    reported (Envoy leaves them out);
 *  - a header value with Envoy's `%…%` substitutions is reported (meshlet sends values as they
 *    are); `%%` is a literal `%`;
 *  - a redirect `port` that is its scheme's default (80 for http, the default, 443 for https) is
 *    left out, so the request's port stays, as Istio programs it; `derivePort: FROM_REQUEST_PORT`
 *    is the request's port.
 */
import type { RouteConfig } from '../layers/route.js';
import type { HeaderOperations, RouteHeaders } from '../routing/header-ops.js';
import { headerName, headerValue, isClientHeader } from '../routing/header-ops.js';
import { redirectScheme } from '../layers/local-answer.js';
import { authorityText, pathText } from '../routing/rewrite.js';
import { compileReplaceAll } from '../routing/regex.js';
import { put, type Doc, type Obj } from './doc.js';
import { integerIn } from './bounds.js';

/** `headers` of a route or destination, and the Host a request `set`/`add` of it gives. */
export function headerOperations(v: unknown, doc: Doc, path: string): { headers: RouteHeaders; authority: string | undefined } {
  const headers: RouteHeaders = {};
  const authority: { set?: string; add?: string } = {};
  const usable = (name: string, value: string | undefined, p: string, side: 'request' | 'response', op: 'set' | 'add' | 'remove'): boolean => {
    const lower = name.toLowerCase();
    if (lower === 'host' || lower === ':authority') {
      if (side === 'request' && op !== 'remove' && value !== undefined) authority[op] = doc.checked(p, () => authorityText({ authority: value }, 'authority', p)!);
      else doc.unsupported(p, 'Envoy leaves the Host header out of header operations here');
      return false;
    }
    if (lower.startsWith(':')) doc.unsupported(p, 'pseudo-headers are not changed by header operations');
    else if (isClientHeader(lower)) doc.unsupported(p, `"${lower}" is the HTTP client's to set`);
    else if (value !== undefined && value.replace(/%%/g, '').includes('%')) doc.unsupported(p, "Envoy's %…% substitutions are not evaluated by meshlet");
    else {
      // What the route's header operations refuse (a space in a name, CR or LF in a value), at this field.
      doc.checked(p, () => headerName(name, p, side));
      if (value !== undefined) doc.checked(p, () => headerValue(value, p));
      return true;
    }
    return false;
  };
  const operations = (x: unknown, p: string, side: 'request' | 'response'): HeaderOperations => {
    const ops: HeaderOperations = {};
    const table = (m: unknown, mp: string, op: 'set' | 'add'): Record<string, string> => {
      const out: Record<string, string> = {};
      for (const [k, raw] of Object.entries(doc.obj(m, mp))) {
        const value = doc.str(raw, `${mp}.${k}`);
        if (usable(k, value, `${mp}.${k}`, side, op)) put(out, k, value.replace(/%%/g, '%'));
      }
      return out;
    };
    doc.fields(doc.obj(x, p), p, {
      set: (m, mp) => (ops.set = table(m, mp, 'set')),
      add: (m, mp) => (ops.add = table(m, mp, 'add')),
      remove: (l, lp) => (ops.remove = doc.list(l, lp).map((n, i) => doc.str(n, `${lp}[${i}]`)).filter((n, i) => usable(n, undefined, `${lp}[${i}]`, side, 'remove'))),
    });
    return ops;
  };
  doc.fields(doc.obj(v, path), path, {
    request: (x, p) => (headers.request = operations(x, p, 'request')),
    response: (x, p) => (headers.response = operations(x, p, 'response')),
  });
  return { headers, authority: authority.set ?? authority.add };
}

/** `rewrite`: uri (Envoy's prefix_rewrite), uriRegexRewrite, authority. */
export function rewrite(v: unknown, doc: Doc, path: string): RouteConfig['rewrite'] {
  const out: NonNullable<RouteConfig['rewrite']> = {};
  doc.fields(doc.obj(v, path), path, {
    uri: (x, p) => {
      const uri = doc.str(x, p);
      if (uri !== '') out.uri = doc.checked(p, () => pathText({ uri }, 'uri', p)!);
    },
    authority: (x, p) => {
      const authority = doc.str(x, p);
      if (authority !== '') out.authority = doc.checked(p, () => authorityText({ authority }, 'authority', p)!);
    },
    uriRegexRewrite: (x, p) => {
      const r: Obj = {};
      doc.fields(doc.obj(x, p), p, { match: (m, mp) => (r.match = doc.str(m, mp)), rewrite: (s, sp) => (r.rewrite = doc.str(s, sp)) });
      out.uriRegexRewrite = { match: (r.match as string | undefined) ?? '', rewrite: (r.rewrite as string | undefined) ?? '' };
      const { match, rewrite } = out.uriRegexRewrite;
      doc.checked(p, () => compileReplaceAll(match, rewrite, p));
    },
  });
  // Istio takes the regex rewrite over uri when both are given; an empty rewrite does nothing.
  if (out.uriRegexRewrite !== undefined) delete out.uri;
  return Object.keys(out).length > 0 ? out : undefined;
}

const DEFAULT_PORT: Readonly<Record<string, number>> = { http: 80, https: 443 };

/** `redirect`: uri, prefixRewrite, authority, scheme, port / derivePort, redirectCode. */
export function redirect(v: unknown, doc: Doc, path: string): RouteConfig['redirect'] {
  const out: NonNullable<RouteConfig['redirect']> = {};
  let port: number | 'request' | undefined;
  const text = (x: unknown, p: string, check: (v: string) => unknown): string => {
    const v = doc.str(x, p);
    if (v !== '') doc.checked(p, () => check(v));
    return v;
  };
  doc.fields(doc.obj(v, path), path, {
    // Each checked as the route's redirect checks it (a space in a path, host or scheme), at this field.
    uri: (x, p) => (out.uri = text(x, p, (v) => pathText({ v }, 'v', p))),
    prefixRewrite: (x, p) => (out.prefixRewrite = text(x, p, (v) => pathText({ v }, 'v', p))),
    authority: (x, p) => (out.authority = text(x, p, (v) => authorityText({ v }, 'v', p))),
    scheme: (x, p) => (out.scheme = text(x, p, (v) => redirectScheme(v, p))),
    port: (x, p) => (port = integerIn(x, 0, 65_535, doc, p, 'a port', "Istio's ValidatePort; 0 is unset")),
    derivePort: (x, p) => {
      const how = doc.str(x, p);
      if (how === 'FROM_REQUEST_PORT') port = 'request';
      else if (how !== 'FROM_PROTOCOL_DEFAULT') doc.bad(p, `expected FROM_PROTOCOL_DEFAULT or FROM_REQUEST_PORT, got "${how}"`);
    },
    redirectCode: (x, p) => {
      const code = doc.num(x, p);
      if (code !== 0 && ![301, 302, 303, 307, 308].includes(code)) doc.bad(p, `Istio programs no redirect for code ${code} (301, 302, 303, 307 and 308 are)`);
      if (code !== 0) out.redirectCode = code;
    },
  });
  for (const k of ['uri', 'prefixRewrite', 'authority', 'scheme'] as const) if (out[k] === '') delete out[k];
  if (typeof port === 'number' && port !== 0 && port !== DEFAULT_PORT[out.scheme?.toLowerCase() ?? 'http']) out.port = port;
  if (port === 'request') out.port = 'request';
  return out;
}

/** Istio's largest direct response body (validateHTTPDirectResponse refuses one over 1 MiB); meshlet's too. */
const MAX_BODY = 1024 * 1024;

/** `directResponse`: status, and body `string` or `bytes` (base64; taken when it is UTF-8 text). */
export function directResponse(v: unknown, doc: Doc, path: string): RouteConfig['directResponse'] {
  const out: Obj = {};
  const size = (bytes: number, p: string) => {
    if (bytes > MAX_BODY) doc.bad(p, `a direct response body is at most 1 MiB (Istio refuses a larger one), got ${bytes} bytes`);
  };
  const o = doc.obj(v, path);
  // Istio's validateHTTPStatus refuses a status left out (0) or outside 200..600; Envoy's
  // direct_response takes 200 to 599.
  if (o.status === undefined) doc.bad(`${path}.status`, 'required (Istio refuses a direct response without one)');
  doc.fields(o, path, {
    status: (x, p) => (out.status = integerIn(x, 200, 599, doc, p, 'an HTTP status', "Istio's validation and Envoy's direct response")),
    body: (x, p) =>
      doc.fields(doc.obj(x, p), p, {
        string: (s, sp) => {
          const text = doc.str(s, sp);
          size(Buffer.byteLength(text), sp);
          out.body = text;
        },
        bytes: (b, bp) => {
          const base64 = doc.str(b, bp);
          const bytes = Buffer.from(base64, 'base64');
          size(bytes.length, bp);
          const text = bytes.toString('utf8');
          if (Buffer.from(text, 'utf8').toString('base64').replace(/=+$/, '') === base64.replace(/\s/g, '').replace(/=+$/, '')) out.body = text;
          else doc.unsupported(bp, 'meshlet answers with a text body: these bytes are not UTF-8 text (the response is sent without a body)');
        },
      }),
  });
  return out as unknown as RouteConfig['directResponse'];
}

/**
 * After a route's fields: the Host its `headers` give becomes its rewrite's authority (unless
 * `rewrite.authority` is there); one destination's own `headers` are the route's when it has none
 * (a split's are reported); and a route that redirects or answers directly keeps nothing Envoy
 * ignores on it (timeout, retries, mirrors: reported) — Istio refuses a destination, rewrite or
 * fault beside it.
 */
export function finishActions(route: RouteConfig, r: Obj, doc: Doc, path: string, authority: string | undefined, perDestination: { headers: unknown; path: string }[]): void {
  const answers = r.redirect !== undefined ? 'redirect' : r.directResponse !== undefined ? 'directResponse' : undefined;
  if (answers !== undefined) {
    for (const k of ['route', 'rewrite', 'fault', ...(answers === 'redirect' ? ['directResponse'] : [])]) {
      if (r[k] !== undefined) doc.bad(`${path}.${k}`, `a route cannot have both ${answers} and ${k}`);
    }
    for (const k of ['timeout', 'retries', 'mirror', 'mirrors', 'mirrorPercentage', 'mirrorPercent']) {
      if (r[k] !== undefined) doc.unsupported(`${path}.${k}`, `no effect on a route that answers with a ${answers === 'redirect' ? 'redirect' : 'direct response'}`);
    }
    delete route.timeoutMs;
    delete route.retry;
    delete route.mirror;
    delete route.mirrors;
    return;
  }
  for (const d of perDestination) {
    if (perDestination.length > 1 || r.headers !== undefined) {
      doc.unsupported(d.path, 'header operations of one destination among several (or beside the route\'s own): put them on the route');
      continue;
    }
    const own = headerOperations(d.headers, doc, d.path);
    route.headers = own.headers;
    authority ??= own.authority;
  }
  if (authority !== undefined && route.rewrite?.authority === undefined) route.rewrite = { ...route.rewrite, authority };
}
