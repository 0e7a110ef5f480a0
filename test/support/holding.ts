/**
 * Helpers for tests that need a slow backend without racing the clock: a backend told to hold keeps
 * each request until the test answers it (and says when its connection closed), a raw dispatch
 * counts every callback the caller gets, and `until` waits turn by turn of the event loop.
 */
import type http from 'node:http';
import type { Dispatcher } from 'undici';
import type { Mesh } from '../../src/index.js';
import type { Backend } from './backend.js';

/** A request a holding backend keeps: answer it, and know when its connection closed. */
export interface Held {
  readonly req: http.IncomingMessage;
  answer(status?: number, text?: string): void;
  readonly closed: Promise<void>;
}

/**
 * Wait until `cond()` holds, one turn of the event loop at a time (setImmediate is not faked), at
 * most 10,000 turns: bounded, and independent of the machine's speed.
 */
export async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 10_000; i++) {
    if (cond()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error('condition not reached in 10,000 turns of the event loop');
}

/**
 * Make every backend of `bs` hold each request; `next()` resolves with the next one to arrive at
 * any of them. `beforeAnswer` runs as each is answered (to move a test clock).
 */
export function hold(...bs: Backend[]): { next(): Promise<Held>; readonly count: number; beforeAnswer: () => void } {
  const arrived: Held[] = [];
  const waiting: ((h: Held) => void)[] = [];
  let taken = 0;
  for (const b of bs) {
    b.handler = (req, res) => {
      req.resume();
      const h: Held = {
        req,
        answer: (status = 200, text = b.name) => {
          holder.beforeAnswer();
          res.writeHead(status, { 'content-type': 'text/plain', 'x-backend': b.name });
          res.end(text);
        },
        closed: new Promise((resolve) => res.once('close', () => resolve())),
      };
      const w = waiting.shift();
      if (w) w(h);
      else arrived.push(h);
    };
  }
  const holder = {
    beforeAnswer: () => {},
    next: (): Promise<Held> => {
      taken++;
      const h = arrived.shift();
      return h ? Promise.resolve(h) : new Promise((resolve) => waiting.push(resolve));
    },
    get count() {
      return taken + arrived.length;
    },
  };
  return holder;
}

/** A request through a raw handler that counts every callback the caller gets. */
export function dispatch(m: Mesh, opts: Partial<Dispatcher.DispatchOptions> = {}) {
  const seen = { starts: 0, ends: 0, errors: 0, status: 0, body: '', error: undefined as Error | undefined };
  let controller: Dispatcher.DispatchController | null = null;
  const done = new Promise<typeof seen>((resolve) => {
    m.dispatcher.dispatch(
      { origin: 'http://api', path: '/x', method: 'GET', ...opts },
      {
        onRequestStart: (c) => void (controller = c),
        onResponseStart: (_c, status) => {
          seen.starts++;
          seen.status = status;
        },
        onResponseData: (_c, chunk) => void (seen.body += chunk.toString()),
        onResponseEnd: () => {
          seen.ends++;
          resolve(seen);
        },
        onResponseError: (_c, err) => {
          seen.errors++;
          seen.error = err;
          resolve(seen);
        },
      },
    );
  });
  return { done, abort: (err: Error) => controller!.abort(err), pause: () => controller!.pause(), resume: () => controller!.resume() };
}
