/**
 * What a matched route does to its request besides choosing a destination: header operations on
 * the request and the response (routing/header-ops.ts), a rewrite of the path and Host
 * (routing/rewrite.ts), or a local answer — a redirect or a direct response — in place of any
 * endpoint (local-answer.ts). Compiled once at createMesh; a route with none of them has no
 * actions (null) and its requests pay nothing for this.
 *
 * The request is rewritten once, when the route is chosen: every layer after it — fault, mirror,
 * hash, the user's interceptors, every attempt and hedge — sees the request as the endpoint will.
 */
import { InvalidConfigError, InvalidRequestError } from '../core/errors.js';
import { join, type Raw } from '../config/check.js';
import { editRequestHeaders, parseRouteHeaders, type CompiledHeaderOps, type RouteHeaders } from '../routing/header-ops.js';
import { matchedParts, parseRewrite, type CompiledRewrite, type RewriteConfig } from '../routing/rewrite.js';
import type { Call } from '../request/call.js';
import { parseLocalAnswer, type DirectResponseConfig, type LocalAnswer, type RedirectConfig } from './local-answer.js';

export interface RouteActions {
  readonly request: CompiledHeaderOps | null;
  readonly response: CompiledHeaderOps | null;
  readonly rewrite: CompiledRewrite | null;
  readonly answer: LocalAnswer | null;
}

/** The actions as configured (validated, normalised), for `toJSON`. */
export function actionsToJSON(a: RouteActions | null): { headers?: RouteHeaders; rewrite?: RewriteConfig; redirect?: RedirectConfig; directResponse?: DirectResponseConfig } {
  if (a === null) return {};
  const headers: RouteHeaders = {};
  if (a.request !== null) headers.request = a.request.json;
  if (a.response !== null) headers.response = a.response.json;
  return {
    ...(a.request !== null || a.response !== null ? { headers } : {}),
    ...(a.rewrite !== null ? { rewrite: a.rewrite.json } : {}),
    ...(a.answer !== null ? a.answer.json : {}),
  };
}

/** Fields that say how to send a request upstream: meaningless on a route that answers itself. */
const UPSTREAM = ['subset', 'service', 'split', 'rewrite', 'fault', 'mirror', 'mirrors', 'retry', 'hedge', 'timeoutMs', 'timeout'];

/** A route's actions (`headers`, `rewrite`, `redirect`, `directResponse`), or null when it has none. */
export function parseRouteActions(r: Raw, path: string): RouteActions | null {
  const parts = matchedParts(r.match as Raw[] | undefined);
  const { request, response } = parseRouteHeaders(r.headers, join(path, 'headers'));
  const answer = parseLocalAnswer(r, path, parts);
  if (answer !== null) {
    const what = r.redirect !== undefined ? 'redirect' : 'directResponse';
    for (const k of UPSTREAM) {
      if (r[k] !== undefined) throw new InvalidConfigError(join(path, k), `a route with "${what}" answers by itself and sends nothing upstream: "${k}" has no effect`);
    }
  }
  const rewrite = parseRewrite(r.rewrite, join(path, 'rewrite'), parts);
  if (request === null && response === null && rewrite === null && answer === null) return null;
  return Object.freeze({ request, response, rewrite, answer });
}

/**
 * Apply `a` to a call that matched match block `block` of the route; true when the route answered
 * it (redirect, direct response, or an invalid request), so nothing goes further.
 */
const SLASH = 0x2f;

export function applyRouteActions(call: Call, a: RouteActions, block: number): boolean {
  if (a.response !== null) call.responseHeaders = a.response;
  if (a.answer !== null) {
    a.answer(call, block);
    return true;
  }
  const rewrite = a.rewrite;
  const newPath = rewrite?.path ?? null;
  if (a.request !== null || newPath !== null) {
    const opts = call.opts;
    try {
      const path = newPath === null ? opts.path : newPath(opts.path, block);
      if (path.charCodeAt(0) !== SLASH) throw new Error(`the route's rewrite gave a path that does not start with "/"`);
      call.opts = {
        ...opts,
        path,
        headers: a.request === null ? opts.headers : editRequestHeaders(opts.headers, a.request),
      };
    } catch (err) {
      call.fail(new InvalidRequestError(call.service, err));
      return true;
    }
  }
  if (rewrite !== null && rewrite.authority !== null) call.authority = rewrite.authority;
  return false;
}
