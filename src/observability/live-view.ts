/**
 * A live view any service can mount: `liveView(mesh)` returns a Node request handler that serves
 * `GET /_meshlet` (a page that redraws every second) and `GET /_meshlet/stats` (`mesh.stats()` as
 * JSON — it holds no secret by design). It returns true when it handled the request. `path`
 * mounts it under another prefix; `authorize(req)` decides who may see it (a request it refuses,
 * or that it throws for, gets a 403).
 *
 *   const view = liveView(mesh, { path: '/ops/meshlet', authorize: (req) => req.headers['x-ops-token'] === token });
 *   http.createServer((req, res) => view(req, res) || app(req, res));
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Mesh } from '../mesh.js';
import { liveViewPage } from './live-view-page.js';

export interface LiveViewOptions {
  /** Where the page is mounted. @default '/_meshlet' */
  path?: string;
  /** Who may see the page and the stats: false (or a throw) answers 403. @default everyone */
  authorize?: (req: IncomingMessage) => boolean;
}

export function liveView(mesh: Mesh, options: LiveViewOptions = {}): (req: IncomingMessage, res: ServerResponse) => boolean {
  const base = (options.path ?? '/_meshlet').replace(/\/$/, '');
  const page = liveViewPage(`${base}/stats`);
  const authorize = options.authorize;
  const allowed = (req: IncomingMessage): boolean => {
    if (authorize === undefined) return true;
    try {
      return authorize(req) === true;
    } catch {
      return false;
    }
  };
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const path = (req.url ?? '').split('?')[0];
    const ours = path === base || path === `${base}/` || path === `${base}/stats`;
    if (ours && !allowed(req)) {
      res.writeHead(403, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : 'forbidden\n');
      return true;
    }
    if (path === base || path === `${base}/`) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : page);
      return true;
    }
    if (path === `${base}/stats`) {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : JSON.stringify(mesh.stats()));
      return true;
    }
    return false;
  };
}
