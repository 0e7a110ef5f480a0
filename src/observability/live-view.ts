/**
 * A live view any service can mount: `liveView(mesh)` returns a Node request handler that serves
 * `GET /_meshlet` (a page that redraws every second) and `GET /_meshlet/stats` (`mesh.stats()` as
 * JSON — it holds no secret by design). It returns true when it handled the request. `path`
 * mounts it under another prefix (it starts with `/`); `authorize(req)` decides who may see it:
 * true, or a promise of true (an `async` function), lets the request through; anything else, a
 * throw or a rejection gets a 403. Options that are wrong throw an InvalidConfigError at
 * `liveView.<option>`.
 *
 *   const view = liveView(mesh, { path: '/ops/meshlet', authorize: (req) => req.headers['x-ops-token'] === token });
 *   http.createServer((req, res) => view(req, res) || app(req, res));
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Mesh } from '../mesh.js';
import { liveViewPage } from './live-view-page.js';
import { expectObject, rejectUnknown } from '../config/check.js';
import { InvalidConfigError } from '../core/errors.js';
import { describe } from '../core/endpoint-spec.js';

export interface LiveViewOptions {
  /** Where the page is mounted: a path that starts with `/` (`'/'` mounts it at the root). @default '/_meshlet' */
  path?: string;
  /**
   * Who may see the page and the stats: true (or a promise of true) lets the request through;
   * anything else — false, a throw, a rejection — answers 403. @default everyone
   */
  authorize?: (req: IncomingMessage) => boolean | PromiseLike<boolean>;
}

/** @throws InvalidConfigError at `liveView.path` / `liveView.authorize` (or `liveView.<unknown option>`) for options that are wrong */
export function liveView(mesh: Mesh, options: LiveViewOptions = {}): (req: IncomingMessage, res: ServerResponse) => boolean {
  const o = expectObject(options ?? {}, 'liveView');
  rejectUnknown(o, ['path', 'authorize'], 'liveView');
  if (o.path !== undefined && (typeof o.path !== 'string' || !o.path.startsWith('/'))) {
    throw new InvalidConfigError('liveView.path', `expected a path that starts with "/", got ${describe(o.path)}`);
  }
  if (o.authorize !== undefined && typeof o.authorize !== 'function') {
    throw new InvalidConfigError('liveView.authorize', `expected a function (req) => boolean, got ${describe(o.authorize)}`);
  }
  const base = ((o.path as string | undefined) ?? '/_meshlet').replace(/\/$/, '');
  const page = liveViewPage(`${base}/stats`);
  const authorize = o.authorize as LiveViewOptions['authorize'];
  /** true / false, or a promise of it (never rejected) when `authorize` answered with a thenable. */
  const allowed = (req: IncomingMessage): boolean | Promise<boolean> => {
    if (authorize === undefined) return true;
    let answer: unknown;
    try {
      answer = authorize(req);
      if (answer === true) return true;
      if (typeof (answer as PromiseLike<unknown> | null)?.then !== 'function') return false;
    } catch {
      return false;
    }
    // Promise.resolve adopts any thenable; a rejection, or a then() that throws, is a refusal.
    return Promise.resolve(answer).then(
      (v) => v === true,
      () => false,
    );
  };
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const path = (req.url ?? '').split('?')[0];
    const ours = path === base || path === `${base}/` || path === `${base}/stats`;
    if (!ours) return false;
    const verdict = allowed(req);
    if (verdict === true || verdict === false) serve(verdict, path!, req, res);
    else {
      // Answered later: nothing of it may become an unhandled rejection.
      verdict.then((ok) => serve(ok, path!, req, res)).catch(() => res.destroy());
    }
    return true;
  };

  function serve(ok: boolean, path: string, req: IncomingMessage, res: ServerResponse): void {
    if (res.headersSent || res.writableEnded || res.destroyed) return; // the client went away meanwhile
    if (!ok) {
      res.writeHead(403, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : 'forbidden\n');
      return;
    }
    if (path === base || path === `${base}/`) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : page);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : JSON.stringify(mesh.stats()));
  }
}
