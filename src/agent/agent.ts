/**
 * An `http.Agent` for the mesh (`mesh.agent()`): `node:http` clients — `http.request`,
 * `http.get`, axios, got, SDKs built on them — reach services through the same pipeline as
 * `fetch`, with no network hop added.
 *
 * For a host that is a service, the agent's "connection" is an in-process socket pair
 * (socket-pair.ts): the client writes its requests into one end, and the other end is fed to an
 * unbound `http.Server` (`server.emit('connection')`), which parses them; each request is then
 * dispatched through the mesh's dispatcher (forward.ts). So balancing, retries, limits and
 * metrics apply per request, not per connection: a keep-alive connection is only the channel
 * between the client and this process, and two requests on it may go to two endpoints.
 *
 * A host that is not a service:
 *  - with `unknownHosts: 'passthrough'` (the default) gets a real socket from the default
 *    `createConnection`, exactly as with a plain `http.Agent` — its options (`lookup`, `family`,
 *    `localAddress`…) apply — except that a bare name failing to resolve says it is not a
 *    configured service and names the closest one (core/unknown-host.ts);
 *  - otherwise it goes in process too, and the mesh's dispatcher decides what it does with it
 *    (refuse it with UNKNOWN_SERVICE, on the ClientRequest's 'error'), so the agent follows
 *    whatever rules the dispatcher has for unknown hosts.
 * A request with `socketPath` (a Unix socket) always gets a real socket.
 *
 * Each request is dispatched in the async context of the code that made it (all
 * `AsyncLocalStorage` stores: the request being served, OpenTelemetry's active span), captured
 * when the request is handed to the agent and carried with it onto whichever connection it gets:
 * a new one, a kept-alive one, or — with `maxSockets` — one another request freed while it
 * waited. Not the context of the connection's first request, which the server side's parser
 * would otherwise run every later request of a keep-alive connection in, nor that of the request
 * that freed the connection.
 *
 * The in-process parser takes request headers up to {@link MAX_HEADER_SIZE_BYTES} (16 MiB):
 * `fetch` through the mesh sends a request's headers whatever their size, so what reaches an
 * endpoint is the endpoint's to refuse (its own 431), through the agent too; the client is code of
 * this process, so the bound guards no one against a peer. A request the parser cannot take (a
 * header block past that, a malformed request written on the connection by hand) is answered on
 * it, if nothing is in flight there, with 431 (or 400) and a text body naming the MeshError code,
 * `INVALID_REQUEST`, then the connection closes cleanly (Node's default answer is followed by a
 * destroy, which an in-process connection reads as a reset: a response cut short); with a request
 * in flight, its ClientRequest fails with that `InvalidRequestError`.
 *
 * The agent speaks plain HTTP (`http://orders/`): TLS to endpoints is the service's `tls`.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import dns from 'node:dns';
import http from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { urlHost } from '../core/endpoint-spec.js';
import { InvalidRequestError } from '../core/errors.js';
import { annotateUnresolved, bareName } from '../core/unknown-host.js';
import { MAX_HEADER_SIZE_BYTES } from '../service/service-config.js';
import { failClient, forward } from './forward.js';
import { InProcessSocket, socketPair } from './socket-pair.js';
import { forwardUpgrade } from './upgrade.js';

/** What the agent needs from its mesh. */
export interface AgentEnv {
  /** Dispatches every request to a service (`mesh.dispatcher`). */
  readonly dispatcher: Dispatcher & { lookup(hostname: string, port?: string): unknown };
  /** True when hosts that are not services pass through (`unknownHosts: 'passthrough'`). */
  readonly passthrough: boolean;
  /** Every configured service name and alias, for the mistyped-name hint. */
  readonly names: readonly string[];
}

/** Where an in-process connection leads: the origin to dispatch to and the Host a client sends for it. */
interface Route {
  readonly origin: string;
  readonly host: string;
  /** Runs a function in the async context of the connection's current request (the code that made it). */
  inContext: <R>(fn: () => R) => R;
  /** The connection's latest response: a parse error while it is open cannot be answered on the connection. */
  current: http.ServerResponse | null;
}

/** A connection's context before its first request is given to it: the context it is parsed in. */
const asParsed = <R>(fn: () => R): R => fn();

/**
 * `http.Agent#addRequest(req, options)`: how every ClientRequest made with an agent is handed to
 * it, synchronously in the ClientRequest's constructor — so in the caller's async context. Not in
 * Node's docs nor in @types/node, but the entry point of every Agent since Node 0.x, which agents
 * such as agent-base and tunnel override; no documented hook runs for each request in its
 * caller's context: `createConnection` runs for new connections only, `reuseSocket` for
 * kept-alive ones only, and a request that waited for a free connection (`maxSockets`) is given
 * it with neither (Node's 'free' handler).
 */
type AddRequest = (this: http.Agent, req: http.ClientRequest, options: http.ClientRequestArgs, ...legacy: unknown[]) => void;
const baseAddRequest = (http.Agent.prototype as unknown as { addRequest: AddRequest }).addRequest;

type LookupCallback = (err: NodeJS.ErrnoException | null, ...rest: unknown[]) => void;
type Lookup = (hostname: string, options: dns.LookupOptions, callback: LookupCallback) => void;

/**
 * The mesh's `http.Agent`. Options are `http.Agent`'s; `keepAlive` defaults to true (in-process
 * connections are cheap to keep and to make). Create one and reuse it: `destroy()` ends its
 * connections, in-flight requests and upgraded connections included.
 */
export class MeshAgent extends http.Agent {
  readonly #env: AgentEnv;
  readonly #server: http.Server;
  /** The route of each in-process connection, by its server-side socket. */
  readonly #routes = new WeakMap<object, Route>();
  /**
   * The server-side sockets of upgrade and CONNECT requests, open or tunnelling: the client's
   * end has left the agent's pools (Node hands an upgraded socket to its caller), so
   * `http.Agent#destroy` would not reach them.
   */
  readonly #tunnels = new Set<Duplex>();

  /** @internal Use `mesh.agent()`. */
  constructor(env: AgentEnv, options: http.AgentOptions = {}) {
    super({ keepAlive: true, ...options });
    this.#env = env;
    // Never bound to a port: connections arrive by emit('connection'). No request or header
    // timeout of its own: the mesh's deadlines and the client's timeouts apply.
    const server = http.createServer({ requestTimeout: 0, headersTimeout: 0, requireHostHeader: false, maxHeaderSize: MAX_HEADER_SIZE_BYTES });
    server.on('clientError', (err: Error & { code?: string }, socket: Duplex) => this.#clientError(err, socket));
    server.on('request', (req, res) => this.#request(req, res, false));
    server.on('checkContinue', (req, res) => this.#request(req, res, true));
    server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.#upgrade(req, socket, head));
    server.on('connect', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.#upgrade(req, socket, head));
    this.#server = server;
  }

  override createConnection(options: http.ClientRequestArgs, callback?: (err: Error | null, stream: Duplex) => void): Duplex {
    // The ClientRequest has set `host` (the host name, without port) and `port`.
    const hostname = String(options.host ?? options.hostname ?? 'localhost').toLowerCase();
    const port = Number(options.port ?? 80);
    if (options.socketPath !== undefined) return super.createConnection(options, callback) as Duplex;
    if (this.#env.passthrough && this.#env.dispatcher.lookup(hostname, String(port)) === null) {
      return super.createConnection(this.#hinted(options, hostname), callback) as Duplex;
    }
    const host = `${urlHost(hostname)}${port === 80 ? '' : `:${port}`}`;
    const [client, server] = socketPair();
    // The context is the request's, set when it gets the connection (addRequest): a connection
    // made for a request that waited (`maxSockets`) is made in the context of the one that left.
    this.#routes.set(server, { origin: `http://${host}`, host, inContext: asParsed, current: null });
    this.#server.emit('connection', server);
    return client;
  }

  /**
   * @internal Node's Agent calls this for every request, in the context of the code that made it
   * (see {@link baseAddRequest}): the request's context is captured here and given to the
   * connection when the request gets it — the ClientRequest's documented 'socket' event, emitted
   * before the request's first byte is written, so before the server side parses it (one request
   * at a time per connection: Node's client does not pipeline).
   */
  addRequest(req: http.ClientRequest, options: http.ClientRequestArgs, ...legacy: unknown[]): void {
    const inContext = AsyncLocalStorage.snapshot();
    req.on('socket', (socket: Socket) => {
      const peer = socket instanceof InProcessSocket ? socket.peer : null;
      const route = peer === null ? undefined : this.#routes.get(peer);
      if (route !== undefined) route.inContext = inContext;
    });
    baseAddRequest.call(this, req, options, ...legacy);
  }

  /** `options` with a DNS lookup that annotates an unresolved bare name (core/unknown-host.ts). */
  #hinted(options: http.ClientRequestArgs, hostname: string): http.ClientRequestArgs {
    if (bareName(hostname) === null) return options;
    const lookup = (options.lookup ?? dns.lookup) as unknown as Lookup;
    const names = this.#env.names;
    const hinting: Lookup = (host, opts, callback) =>
      lookup(host, opts, (err, ...rest) => callback(err === null ? null : annotateUnresolved(err, host, names), ...rest));
    return { ...options, lookup: hinting as unknown as http.ClientRequestArgs['lookup'] };
  }

  #request(req: http.IncomingMessage, res: http.ServerResponse, expectContinue: boolean): void {
    const route = this.#routes.get(req.socket);
    if (route === undefined) return void req.socket.destroy();
    route.current = res;
    route.inContext(() => forward(this.#env.dispatcher, route.origin, route.host, req, res, expectContinue));
  }

  /**
   * The in-process parser refused what the client wrote (Node's 'clientError'). Answered on the
   * connection, then closed with a FIN, when no response is open on it; else the client's
   * request fails with the typed error (its response may have started: nothing can be written).
   */
  #clientError(err: Error & { code?: string }, socket: Duplex): void {
    const route = this.#routes.get(socket);
    if (route === undefined) return void socket.destroy();
    if (!socket.writable) return; // answered already: the connection is closing
    const error = new InvalidRequestError(route.host, err);
    const open = route.current;
    if (open !== null && !open.writableEnded) return failClient(socket, error);
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW' ? 413 : 400;
    const body = `${error.code}: ${error.message}${err.code === 'HPE_HEADER_OVERFLOW' ? ` (the agent takes ${MAX_HEADER_SIZE_BYTES} bytes of headers)` : ''}\n`;
    socket.end(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  }

  /** End every connection, in-flight requests and upgraded ones (WebSocket, tunnels) included. */
  override destroy(): void {
    super.destroy();
    for (const socket of this.#tunnels) socket.destroy();
    this.#tunnels.clear();
  }

  #upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const route = this.#routes.get(socket);
    if (route === undefined) return void socket.destroy();
    this.#tunnels.add(socket);
    socket.once('close', () => this.#tunnels.delete(socket));
    route.inContext(() => forwardUpgrade(this.#env.dispatcher, route.origin, route.host, req, socket, head));
  }
}
