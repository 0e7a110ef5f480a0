/**
 * The entry points, in the dialect of each server Node services use: a `node:http` / `node:https`
 * request listener, an Express / Connect middleware, a Fastify plugin. Each only asks its
 * door (door.ts) whether a request comes in, answers a refusal in its own way, and runs the rest
 * of the request in its context. Express and Fastify are optional peers: nothing here imports
 * them; the Fastify plugin is typed by the little of Fastify it uses.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isRefusal, type Door, type Refusal } from './door.js';

/** A `node:http` / `node:https` request listener (an Express app is one too). */
export type RequestListener = (req: IncomingMessage, res: ServerResponse) => unknown;

/** An Express / Connect middleware. */
export type Middleware = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;

/** The parts of a Fastify reply the plugin uses. */
export interface FastifyReplyLike {
  readonly raw: ServerResponse;
  code(statusCode: number): FastifyReplyLike;
  header(name: string, value: string): FastifyReplyLike;
  send(payload?: unknown): unknown;
}

/** The parts of a Fastify instance the plugin uses. */
export interface FastifyLike {
  addHook(name: 'onRequest', hook: (request: { readonly raw: IncomingMessage }, reply: FastifyReplyLike, done: (err?: Error) => void) => void): unknown;
}

/**
 * A Fastify plugin (`app.register(plugin)`). It applies to the whole instance, as
 * `fastify-plugin` would make it (Fastify's `skip-override`): register it first, at the root.
 */
export type FastifyPlugin = (instance: FastifyLike, options: unknown, done: (err?: Error) => void) => void;

/** Write `refusal` on a plain response. */
function refuse(res: ServerResponse, refusal: Refusal): void {
  res.writeHead(refusal.status, {
    'retry-after': refusal.retryAfter,
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(refusal.text),
  });
  res.end(refusal.text);
}

export function wrapListener(door: Door, listener: RequestListener): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const v = door.enter(req, res);
    if (isRefusal(v)) refuse(res, v);
    else v.runInAsyncScope(listener, null, req, res);
  };
}

export function middleware(door: Door): Middleware {
  return (req, res, next) => {
    const v = door.enter(req, res);
    if (isRefusal(v)) refuse(res, v);
    else v.runInAsyncScope(next, null);
  };
}

export function fastifyPlugin(door: Door): FastifyPlugin {
  const plugin: FastifyPlugin = (instance, _options, done) => {
    instance.addHook('onRequest', (request, reply, next) => {
      const v = door.enter(request.raw, reply.raw);
      if (!isRefusal(v)) return void v.runInAsyncScope(next, null);
      // A hook that answers does not call next (Fastify's hooks docs, "Respond to a request from a hook").
      reply.code(v.status).header('retry-after', v.retryAfter).header('content-type', 'text/plain; charset=utf-8').send(v.text);
    });
    done();
  };
  // What fastify-plugin sets: the hook applies to the instance it is registered on, not a child scope.
  Object.assign(plugin, { [Symbol.for('skip-override')]: true, [Symbol.for('fastify.display-name')]: `meshlet-${door.name}` });
  return plugin;
}
