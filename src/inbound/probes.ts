/**
 * Kubernetes probes: `GET /healthz` (liveness) answers 200 while the process can answer at all —
 * also while it drains, or Kubernetes would restart it instead of letting it finish — and
 * `GET /readyz` (readiness) answers 503 from the moment a drain starts (so the endpoint is taken
 * out of Services and load balancers), or while the application's own `ready()` says no.
 *
 * The handler is a request listener and a middleware at once: a request for another path goes
 * to `next` when there is one, else gets a 404. Mount it before the inbound entry point (or on
 * a port of its own), so that its limits never refuse a probe.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { expectObject, join, optString, rejectUnknown } from '../config/check.js';
import { describe } from '../core/endpoint-spec.js';
import { InvalidConfigError, messageOf } from '../core/errors.js';
import { StateWarning, type Logger } from '../core/log.js';

export interface ProbeOptions {
  /** Path of the liveness probe. @default '/healthz' */
  livenessPath?: string;
  /** Path of the readiness probe. @default '/readyz' */
  readinessPath?: string;
  /** The application's own readiness (a database connected, a cache warm): false → 503. A function that throws counts as false. */
  ready?: () => boolean;
}

/** What `mesh.probes()` returns: a request listener, and an Express / Connect middleware. */
export type ProbeHandler = (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) => void;

export function probeHandler(raw: unknown, path: string, draining: () => boolean, log: Logger): ProbeHandler {
  const o = raw === undefined ? {} : expectObject(raw, path);
  rejectUnknown(o, ['livenessPath', 'readinessPath', 'ready'], path);
  const live = optString(o, 'livenessPath', path) ?? '/healthz';
  const ready = optString(o, 'readinessPath', path) ?? '/readyz';
  for (const [key, p] of [['livenessPath', live], ['readinessPath', ready]] as const) {
    if (!p.startsWith('/')) throw new InvalidConfigError(join(path, key), `expected a path starting with "/", got ${JSON.stringify(p)}`);
  }
  const appReady = o.ready;
  if (appReady !== undefined && typeof appReady !== 'function') throw new InvalidConfigError(join(path, 'ready'), `expected a function, got ${describe(appReady)}`);
  // A ready() that throws is warned of once (the kubelet asks every few seconds), until it returns.
  const threw = new StateWarning(log);
  const isReady = (): string | null => {
    if (draining()) return 'draining';
    if (appReady === undefined) return null;
    let answer: unknown;
    try {
      answer = (appReady as () => unknown)();
    } catch (err) {
      threw.warn('threw', `probes: ready() threw, answering not ready (warned once until it returns again): ${messageOf(err)}`);
      return 'not ready';
    }
    threw.clear();
    return answer === true ? null : 'not ready';
  };
  return (req, res, next) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const p = q < 0 ? url : url.slice(0, q);
    const get = req.method === 'GET' || req.method === 'HEAD';
    if (!get || (p !== live && p !== ready)) {
      if (next) return next();
      return answer(req, res, 404, 'not found');
    }
    if (p === live) return answer(req, res, 200, 'ok');
    const why = isReady();
    answer(req, res, why === null ? 200 : 503, why ?? 'ok');
  };
}

function answer(req: IncomingMessage, res: ServerResponse, status: number, text: string): void {
  const body = `${text}\n`;
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
  res.end(req.method === 'HEAD' ? undefined : body);
}
