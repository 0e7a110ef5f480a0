/**
 * MeshDispatcher: the core of meshlet, an undici `Dispatcher`. Anything that dispatches —
 * `fetch(url, { dispatcher })`, `undici.request`, `stream`, `pipeline`, `setGlobalDispatcher` —
 * goes through `dispatch`, which routes the request's host to a {@link Service} or passes it
 * through to an ordinary Agent (or refuses it, when configured so). Where an origin leads is
 * decided once, on its first request, and kept.
 *
 * A request routed to a service must name an origin-form path (`/…`): an absolute-form target
 * (`http://elsewhere/admin`, which undici would send as given, and which a proxy or gateway behind
 * the endpoint would follow) or an authority-form one (CONNECT `host:port`) is refused with
 * INVALID_REQUEST before any endpoint is contacted, as a sidecar refuses what it does not route.
 * (undici sends no `OPTIONS *`.) The Host header the endpoint gets is the mesh's, not the caller's
 * (request/attempt.ts).
 *
 * Handlers of both shapes are accepted: undici 8's (`onRequestStart`…) and the legacy one
 * (`onConnect`, `onHeaders`…) that the undici bundled in Node 22 and 24 still uses for the global
 * `fetch`: such a request goes through undici's documented `Dispatcher1Wrapper` around this
 * dispatcher, which adapts the handler (and, as for any legacy consumer, asks for HTTP/1.1) and
 * dispatches it here again.
 */
import { Agent, Dispatcher, Dispatcher1Wrapper, errors } from 'undici';
import { LRUCache } from 'lru-cache';
import { InvalidRequestError, MeshClosedError, UnknownServiceError } from './errors.js';
import { hintUnknownHost } from './unknown-host.js';

/** What the dispatcher routes to: a service of the mesh (service/service.ts). */
export interface Service {
  readonly name: string;
  dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler, host: string): void;
}

/** Where a request's origin leads: a service (with the Host header to send) or elsewhere. */
interface Route {
  readonly service: Service | null;
  /** The host the caller addressed, `name[:port]`. */
  readonly host: string;
  /** For a host that is no service: go out through the Agent (true) or fail with UNKNOWN_SERVICE. */
  readonly pass: boolean;
}

/** How the dispatcher finds services and treats other hosts. */
export interface DispatcherOptions {
  /** Services by every host name that addresses them, lower-case (service/hosts.ts lists them). */
  readonly hosts: ReadonlyMap<string, Service>;
  /** Whether a host that is no service (its `URL.hostname`) may go out through an ordinary Agent. */
  readonly passthrough: (hostname: string) => boolean;
  /** The caller's dispatcher for hosts that pass through (not closed by the mesh); else an Agent of its own. */
  readonly passthroughDispatcher?: Dispatcher | null;
  /**
   * For a host that is no service yet: a promise that settles when it may have become one (live
   * config still loading), or null. The request waits for it, then is routed again. Never cached.
   */
  readonly pending?: (hostname: string) => Promise<void> | null;
}

/** '/', the first character of an origin-form path. */
const SLASH = 47;

export class MeshDispatcher extends Dispatcher {
  readonly #hosts: ReadonlyMap<string, Service>;
  readonly #passthrough: (hostname: string) => boolean;
  /** Origins that address a service: a plain map (they are few, and looked up on every request). */
  readonly #serviceRoutes = new Map<string, Route>();
  /** Everything else seen (passthrough hosts are open-ended): bounded. */
  readonly #routes = new LRUCache<string, Route>({ max: 1024 });
  #agent: Agent | null = null;
  /** undici's adapter for legacy handlers, around this dispatcher (made on the first such request). */
  #legacy: Dispatcher1Wrapper | null = null;
  readonly #passthroughDispatcher: Dispatcher | null;
  readonly #pending: ((hostname: string) => Promise<void> | null) | null;
  #closed = false;
  #closing: Promise<void> | null = null;
  readonly #services: { close(): Promise<void>; destroy(): Promise<void> };

  /** @internal Created by `createMesh`; use `mesh.dispatcher`. */
  constructor(options: DispatcherOptions, services: { close(): Promise<void>; destroy(): Promise<void> }) {
    super();
    this.#hosts = options.hosts;
    this.#passthrough = options.passthrough;
    this.#passthroughDispatcher = options.passthroughDispatcher ?? null;
    this.#pending = options.pending ?? null;
    this.#services = services;
  }

  /**
   * @internal The host table changed (a service added, replaced or removed by live config): where
   * each origin leads is decided again on its next request. Requests already dispatched are not
   * affected.
   */
  routesChanged(): void {
    this.#serviceRoutes.clear();
    this.#routes.clear();
  }

  override dispatch(opts: Dispatcher.DispatchOptions, h: Dispatcher.DispatchHandler): boolean {
    if (typeof opts !== 'object' || opts === null) throw new errors.InvalidArgumentError('opts must be an object');
    if (typeof h !== 'object' || h === null) throw new errors.InvalidArgumentError('handler must be an object');
    if (typeof h.onRequestStart !== 'function') return (this.#legacy ??= new Dispatcher1Wrapper(this)).dispatch(opts, h);
    if (this.#closed) {
      h.onResponseError?.(null as never, new MeshClosedError());
      return true;
    }
    const origin = opts.origin;
    if (origin == null) throw new errors.InvalidArgumentError('opts.origin is required: the mesh routes by host');
    const key = typeof origin === 'string' ? origin : origin.origin;
    let route = this.#serviceRoutes.get(key) ?? this.#routes.get(key);
    if (route === undefined) {
      route = this.#resolve(key);
      if (route.service === null && this.#pending !== null) {
        const wait = this.#pending(hostnameOf(key));
        if (wait !== null) {
          void wait.then(
            () => this.dispatch(opts, h),
            () => this.dispatch(opts, h),
          );
          return true;
        }
      }
      // A service's origins are bounded by its names and the ports callers use; cap them anyway.
      if (route.service !== null && this.#serviceRoutes.size < 4096) this.#serviceRoutes.set(key, route);
      else this.#routes.set(key, route);
    }
    if (route.service !== null) {
      const path = opts.path;
      if (typeof path === 'string' && path.charCodeAt(0) === SLASH) route.service.dispatch(opts, h, route.host);
      else h.onResponseError?.(null as never, notOriginForm(route.service.name));
      return true;
    }
    if (!route.pass) {
      h.onResponseError?.(null as never, new UnknownServiceError(route.host));
      return true;
    }
    const passthrough = this.#passthroughDispatcher ?? (this.#agent ??= new Agent());
    return passthrough.dispatch(opts, hintUnknownHost(h, route.host, this.#hosts));
  }

  #resolve(origin: string): Route {
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      // Not a URL: with 'passthrough' the Agent reports it as it would; no list entry is such a string.
      return { service: null, host: origin, pass: this.#passthrough(origin) };
    }
    const service = this.lookup(url.hostname, url.port || (url.protocol === 'https:' ? '443' : '80'));
    return { service, host: url.host, pass: service === null && this.#passthrough(url.hostname) };
  }

  /**
   * The service a host name addresses: one of the names createMesh listed for it — its name, its
   * `hosts`, the Kubernetes forms of its name (`name.ns`, `name.ns.svc`,
   * `name.ns.svc.<clusterDomain>`) in the namespaces it is known in — matched exactly, in any
   * case, with or without a trailing dot — first with the port (`name:9080`, a service with
   * `port`), then without. Any other host is no service.
   */
  lookup(hostname: string, port?: string): Service | null {
    let host = hostname.toLowerCase();
    if (host.endsWith('.')) host = host.slice(0, -1);
    return (port === undefined ? undefined : this.#hosts.get(`${host}:${port}`)) ?? this.#hosts.get(host) ?? null;
  }

  override close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | void {
    this.#closed = true;
    this.#closing ??= (async () => {
      await Promise.allSettled([this.#services.close(), this.#agent?.close()]);
    })();
    if (callback) {
      this.#closing.then(() => callback());
      return;
    }
    return this.#closing;
  }

  override destroy(): Promise<void>;
  override destroy(err: Error | null): Promise<void>;
  override destroy(callback: () => void): void;
  override destroy(err: Error | null, callback: () => void): void;
  override destroy(a?: Error | null | (() => void), b?: () => void): Promise<void> | void {
    const callback = typeof a === 'function' ? a : b;
    const err = typeof a === 'function' ? null : (a ?? null);
    this.#closed = true;
    const p = Promise.allSettled([this.#services.destroy(), this.#agent?.destroy(err)]).then(() => {});
    if (callback) {
      p.then(() => callback());
      return;
    }
    return p;
  }
}

function hostnameOf(origin: string): string {
  try {
    return new URL(origin).hostname;
  } catch {
    return origin;
  }
}

function notOriginForm(service: string): InvalidRequestError {
  return new InvalidRequestError(
    service,
    new Error('the path must start with "/": an absolute-form ("http://…") or authority-form ("host:port") target is not routed to a service'),
    { attempts: 0 },
  );
}
