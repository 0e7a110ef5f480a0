/**
 * Upgrades (`Connection: upgrade`, e.g. WebSocket) and `CONNECT` through the mesh agent. The
 * request is dispatched through the mesh like any other (undici's `upgrade` option, or method
 * CONNECT), so it is routed and balanced — one endpoint per connection, as a tunnel has to be —
 * and never retried. When the endpoint switches protocols, its status line and headers go to the
 * client, and from then on the client's in-process connection and the endpoint's socket are
 * piped to each other until either side closes — or the agent is destroyed (agent.ts), or the
 * mesh's close ends the endpoint's socket after its grace (service/shutdown.ts). (A CONNECT to a service names an authority-form
 * target, which the dispatcher refuses with INVALID_REQUEST before any endpoint is contacted.)
 *
 * An endpoint that answers with an ordinary response instead gets that response relayed
 * (framed by its Content-Length or by closing the connection), and a failure reaches the
 * client's ClientRequest as the mesh's typed error, as for any request (forward.ts).
 */
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { ClientRelay, requestHeaders, responseHeaders } from './forward.js';

type Headers = Record<string, string | string[] | undefined>;

/** An HTTP/1.1 response head: status line, headers, blank line. */
function head(status: number, message: string | undefined, headers: Headers): string {
  let s = `HTTP/1.1 ${status} ${message || STATUS_CODES[status] || ''}\r\n`;
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined) continue;
    for (const value of Array.isArray(v) ? v : [v]) s += `${name}: ${value}\r\n`;
  }
  return `${s}\r\n`;
}

/** Dispatch an upgrade or CONNECT request `req`, whose connection is `socket`, to `origin`. */
export function forwardUpgrade(dispatcher: Dispatcher, origin: string, host: string, req: IncomingMessage, socket: Duplex, early: Buffer): void {
  const connect = req.method === 'CONNECT';
  const handler = new TunnelHandler(socket, early);
  const opts: Dispatcher.DispatchOptions = {
    origin,
    path: req.url ?? '/',
    method: (req.method ?? 'GET') as Dispatcher.HttpMethod,
    headers: requestHeaders(req.rawHeaders, host, req.headers.connection),
    body: null,
  };
  if (!connect) opts.upgrade = req.headers.upgrade ?? 'unknown';
  try {
    dispatcher.dispatch(opts, handler);
  } catch (err) {
    handler.onResponseError(null, err as Error);
  }
}

/** The handler of one upgrade or CONNECT: the tunnel once the endpoint switches protocols, else its response relayed. */
class TunnelHandler extends ClientRelay {
  readonly #socket: Duplex;
  readonly #early: Buffer;

  constructor(socket: Duplex, early: Buffer) {
    super(socket, socket);
    this.#socket = socket;
    this.#early = early;
  }

  onRequestUpgrade(_controller: Dispatcher.DispatchController, status: number, headers: Headers, upstream: Duplex): void {
    this.ended = true;
    const socket = this.#socket;
    if (this.gone) {
      upstream.destroy();
      return;
    }
    socket.write(head(status, undefined, headers));
    if (this.#early.length > 0) upstream.write(this.#early);
    upstream.pipe(socket);
    socket.pipe(upstream);
    // Either side closing (or failing) closes the other: a tunnel has no half of its own.
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
    upstream.on('close', () => socket.destroy());
    socket.on('close', () => upstream.destroy());
  }

  onResponseStart(_controller: Dispatcher.DispatchController, status: number, headers: Headers, statusMessage?: string): void {
    if (status < 200 || this.gone) return;
    // Not upgraded: relay the response, its end marked by its Content-Length or by closing.
    this.#socket.write(head(status, statusMessage, { ...responseHeaders(headers), connection: 'close' }));
  }

  onResponseEnd(): void {
    this.ended = true;
    this.#socket.end();
  }
}
