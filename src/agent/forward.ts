/**
 * The server side of the mesh agent: one request parsed from an in-process connection is
 * dispatched through the mesh — `dispatcher.dispatch({ origin, … })`, the public undici API, so
 * it takes the same path as `fetch` and `undici.request` (routing, balancing per request, limits,
 * retries, metrics) — and its response is written back on that connection as it arrives.
 *
 * What the client sees:
 *  - a response: its status, message and headers as the endpoint sent them, minus the hop-by-hop
 *    ones (`connection`, `keep-alive`, `transfer-encoding`…: the in-process connection frames the
 *    body itself), then the body, streamed both ways with back-pressure: a client that does not
 *    read pauses the mesh's request (and so the endpoint's socket), and a request body is read
 *    from the client only as fast as the endpoint takes it;
 *  - a failure: the client's socket is destroyed with the mesh's error, so the ClientRequest's
 *    'error' event carries that same typed `MeshError` (`OVERLOADED`, `RATE_LIMITED`,
 *    `UPSTREAM_FAILED`…). After the response started, 'error' still carries it, and the response
 *    stream ends with Node's own 'aborted' error (ECONNRESET), as when a connection drops;
 *  - its own abort (`req.destroy()`, a client-side timeout) closes the connection, which aborts
 *    the mesh's request: the endpoint's request is cancelled, nothing is retried;
 *  - `Expect: 100-continue`: the '100 Continue' is sent when the mesh starts sending the body to
 *    an endpoint, so a request the mesh refuses first (`RATE_LIMITED`, `OVERLOADED`…) fails
 *    without the client ever sending its body.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Writable } from 'node:stream';
import { errors, type Dispatcher } from 'undici';
import { InProcessSocket } from './socket-pair.js';

type Headers = Record<string, string | string[] | undefined>;

/** Hop-by-hop headers: they describe one connection, not the request (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'expect', 'http2-settings']);

/**
 * The request's headers as undici takes them (a flat `[name, value, …]` list, repeated names
 * kept), minus the hop-by-hop ones and those the `Connection` header names. A `Host` header equal
 * to the connection's host (what a client sends by default) is left out, so the mesh sets the
 * Host an endpoint sees (`hostHeader`) exactly as for `fetch`; a different one is kept.
 */
export function requestHeaders(raw: readonly string[], host: string, connection: string | undefined): string[] {
  const named = connection === undefined ? null : new Set(connection.toLowerCase().split(',').map((t) => t.trim()));
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (HOP_BY_HOP.has(name) || named?.has(name)) continue;
    if (name === 'host' && raw[i + 1]!.toLowerCase() === host) continue;
    out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}

/** The response's headers for the client, minus the hop-by-hop ones and those its `Connection` header names. */
export function responseHeaders(headers: Headers): Headers {
  const connection = headers.connection;
  const named = connection === undefined ? null : new Set(String(connection).toLowerCase().split(',').map((t) => t.trim()));
  const out: Headers = {};
  for (const name in headers) if (!HOP_BY_HOP.has(name) && !named?.has(name)) out[name] = headers[name];
  return out;
}

/** True when the request carries a body (RFC 9112 §6.3: a length or a transfer coding). */
function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * End the client's side of the connection with `err`: its ClientRequest emits `err`. Not at once
 * but on the next turn of the event loop, as an answer from a network peer would come: a
 * refusal made while the client is still finishing its write (a rate limit answers at dispatch)
 * would otherwise also fail that write's callback, which some clients (got) report as a second,
 * unwrapped error.
 */
export function failClient(socket: unknown, err: Error): void {
  if (!(socket instanceof InProcessSocket)) return;
  setImmediate(() => {
    const client = socket.peer;
    if (client !== null) client.destroy(err);
    else socket.destroy();
  });
}

/** The request's body for undici: none, the client's stream, or one that sends '100 Continue' first. */
function bodyOf(req: IncomingMessage, res: ServerResponse, expectContinue: boolean): AsyncIterable<Buffer> | null {
  if (!hasBody(req)) return null;
  if (!expectContinue) return req;
  let continued = false;
  return {
    [Symbol.asyncIterator](): AsyncIterator<Buffer> {
      // The mesh asks for the body once it sends the request to an endpoint: now the client may send it.
      if (!continued) {
        continued = true;
        res.writeContinue();
      }
      return req[Symbol.asyncIterator]();
    },
  };
}

/**
 * Dispatch `req` to `origin` through `dispatcher` and write the response to `res`.
 * `expectContinue`: the client waits for '100 Continue' before sending its body.
 */
export function forward(dispatcher: Dispatcher, origin: string, host: string, req: IncomingMessage, res: ServerResponse, expectContinue: boolean): void {
  const writer = new ResponseWriter(req, res);
  const opts: Dispatcher.DispatchOptions = {
    origin,
    path: req.url ?? '/',
    method: (req.method ?? 'GET') as Dispatcher.HttpMethod,
    headers: requestHeaders(req.rawHeaders, host, req.headers.connection),
    // undici takes any async iterable as a body (its types list only Readable).
    body: bodyOf(req, res, expectContinue) as Dispatcher.DispatchOptions['body'],
  };
  try {
    dispatcher.dispatch(opts, writer);
  } catch (err) {
    writer.onResponseError(null, err as Error);
  }
}

/**
 * What the handlers of a request relayed to an in-process client share (ResponseWriter here,
 * upgrade.ts's tunnel): the client going away before the end aborts the mesh's request; a client
 * that does not read pauses it (and so the endpoint's socket) until it drains; a failure ends the
 * client's connection with the mesh's error ({@link failClient}).
 */
export abstract class ClientRelay implements Dispatcher.DispatchHandler {
  /** Where the response goes: the client's ServerResponse, or its connection for a tunnel. */
  protected readonly out: Writable;
  /** The connection a failure is reported on. */
  readonly #socket: unknown;
  protected controller: Dispatcher.DispatchController | null = null;
  /** The mesh's request ended (response end or error): the connection closing is not an abort. */
  protected ended = false;
  /** The client went away before the end. */
  protected gone = false;
  #waitingDrain = false;

  constructor(out: Writable, socket: unknown) {
    this.out = out;
    this.#socket = socket;
    out.on('close', () => {
      if (this.ended) return;
      this.gone = true;
      this.controller?.abort(new errors.RequestAbortedError('the client closed the connection'));
    });
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.gone) controller.abort(new errors.RequestAbortedError('the client closed the connection'));
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.out.write(chunk) || this.#waitingDrain) return;
    // The client is not reading: hold the mesh's request (and the endpoint's socket) until it does.
    this.#waitingDrain = true;
    controller.pause();
    this.out.once('drain', () => {
      this.#waitingDrain = false;
      controller.resume();
    });
  }

  onResponseError(_controller: Dispatcher.DispatchController | null, err: Error): void {
    this.ended = true;
    if (!this.gone) this.failClient(err);
  }

  /** End the client's connection with `err` ({@link failClient}). */
  protected failClient(err: Error): void {
    failClient(this.#socket, err);
  }
}

/** The handler of one forwarded request: writes what the mesh answers to the client's response. */
class ResponseWriter extends ClientRelay {
  readonly #res: ServerResponse;

  constructor(req: IncomingMessage, res: ServerResponse) {
    super(res, req.socket);
    this.#res = res;
    res.sendDate = false; // the endpoint's Date header, or none — not one made here
  }

  onResponseStart(controller: Dispatcher.DispatchController, status: number, headers: Headers, statusMessage?: string): void {
    if (status < 200 || this.gone) return; // informational answers stay here
    try {
      this.#res.writeHead(status, statusMessage || undefined, responseHeaders(headers) as Record<string, string | string[]>);
    } catch (err) {
      this.ended = true;
      controller.abort(err as Error);
      this.failClient(err as Error);
    }
  }

  onResponseEnd(_controller: Dispatcher.DispatchController, trailers: Headers): void {
    this.ended = true;
    const res = this.#res;
    // Trailers travel only in a chunked body (an endpoint's Content-Length rules them out).
    if (trailers && Object.keys(trailers).length > 0 && !res.hasHeader('content-length')) res.addTrailers(trailers as Record<string, string>);
    res.end();
  }
}
