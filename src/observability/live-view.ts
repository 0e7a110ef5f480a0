/**
 * A live view any service can mount: `liveView(mesh)` returns a Node request handler that serves
 * `GET /_meshlet` (a page that redraws every second) and `GET /_meshlet/stats` (`mesh.stats()` as
 * JSON — it holds no secret by design). It returns true when it handled the request.
 *
 *   const view = liveView(mesh);
 *   http.createServer((req, res) => view(req, res) || app(req, res));
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Mesh } from '../mesh.js';
import { liveViewPage } from './live-view-page.js';

export interface LiveViewOptions {
  /** Where the page is mounted. @default '/_meshlet' */
  path?: string;
}

export function liveView(mesh: Mesh, options: LiveViewOptions = {}): (req: IncomingMessage, res: ServerResponse) => boolean {
  const base = (options.path ?? '/_meshlet').replace(/\/$/, '');
  const page = liveViewPage(`${base}/stats`);
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const path = (req.url ?? '').split('?')[0];
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
