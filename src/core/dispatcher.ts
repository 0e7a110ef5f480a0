/**
 * MeshDispatcher: the core of meshlet, an undici `Dispatcher`. Anything that dispatches —
 * `fetch(url, { dispatcher })`, `undici.request`, `stream`, `pipeline`, `setGlobalDispatcher` —
 * goes through `dispatch`, which routes the request's host to a {@link Service} or passes it
 * through to an ordinary Agent (or refuses it, when configured so).
 *
 * Handlers of both shapes are accepted: undici 8's (`onRequestStart`…) and the legacy one
 * (`onConnect`, `onHeaders`…) that the undici bundled in Node 22 and 24 still uses for the global
 * `fetch`; undici's own `Dispatcher1Wrapper.wrapHandler` adapts the latter.
 */
import { Agent, Dispatcher, Dispatcher1Wrapper, errors } from 'undici';
import { LRUCache } from 'lru-cache';
import { MeshClosedError, UnknownServiceError } from './errors.js';
import { hintUnknownHost } from './unknown-host.js';

const wrapHandler = (Dispatcher1Wrapper as unknown as { wrapHandler(h: object): Dispatcher.DispatchHandler }).wrapHandler;

/** What the dispatcher routes to: a service of the mesh (service/service.ts). */
export interface Service {
  dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler, host: string): void;
}

/** Where a request's origin leads: a service (with the Host header to send) or elsewhere. */
interface Route {
  readonly service: Service | null;
  /** The host the caller addressed, `name[:port]`. */
  readonly host: string;
}

/** How the dispatcher finds services and treats other hosts. */
export interface DispatcherOptions {
  /** Services by every host name that addresses them. */
  readonly hosts: ReadonlyMap<string, Service>;
  readonly unknownHosts: 'passthrough' | 'reject';
  /** The caller's dispatcher for hosts that pass through (not closed by the mesh); else an Agent of its own. */
  readonly passthrough?: Dispatcher | null;
}

const K8S_SUFFIXES = ['.svc.cluster.local', '.svc'];

export class MeshDispatcher extends Dispatcher {
  readonly #hosts: ReadonlyMap<string, Service>;
  readonly #reject: boolean;
  /** Origins that address a service: a plain map (they are few, and looked up on every request). */
  readonly #serviceRoutes = new Map<string, Route>();
  /** Everything else seen (passthrough hosts are open-ended): bounded. */
  readonly #routes = new LRUCache<string, Route>({ max: 1024 });
  #agent: Agent | null = null;
  readonly #passthrough: Dispatcher | null;
  #closed = false;
  #closing: Promise<void> | null = null;
  readonly #services: { close(): Promise<void>; destroy(): Promise<void> };

  /** @internal Created by `createMesh`; use `mesh.dispatcher`. */
  constructor(options: DispatcherOptions, services: { close(): Promise<void>; destroy(): Promise<void> }) {
    super();
    this.#hosts = options.hosts;
    this.#reject = options.unknownHosts === 'reject';
    this.#passthrough = options.passthrough ?? null;
    this.#services = services;
  }

  override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    if (typeof opts !== 'object' || opts === null) throw new errors.InvalidArgumentError('opts must be an object');
    if (typeof handler !== 'object' || handler === null) throw new errors.InvalidArgumentError('handler must be an object');
    const h = typeof handler.onRequestStart === 'function' ? handler : wrapHandler(handler);
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
      // A service's origins are bounded by its names and the ports callers use; cap them anyway.
      if (route.service !== null && this.#serviceRoutes.size < 4096) this.#serviceRoutes.set(key, route);
      else this.#routes.set(key, route);
    }
    if (route.service !== null) {
      route.service.dispatch(opts, h, route.host);
      return true;
    }
    if (this.#reject) {
      h.onResponseError?.(null as never, new UnknownServiceError(route.host));
      return true;
    }
    const passthrough = this.#passthrough ?? (this.#agent ??= new Agent());
    return passthrough.dispatch(opts, hintUnknownHost(h, route.host, this.#hosts));
  }

  #resolve(origin: string): Route {
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      return { service: null, host: origin };
    }
    return { service: this.lookup(url.hostname), host: url.host };
  }

  /**
   * The service a host name addresses: an exact name or alias, or a Kubernetes form of a name —
   * `name.namespace`, `name.namespace.svc`, `name.namespace.svc.cluster.local`.
   */
  lookup(hostname: string): Service | null {
    const host = hostname.toLowerCase().replace(/\.$/, '');
    const exact = this.#hosts.get(host);
    if (exact) return exact;
    let rest = host;
    for (const suffix of K8S_SUFFIXES) {
      if (rest.endsWith(suffix)) {
        rest = rest.slice(0, -suffix.length);
        break;
      }
    }
    const byFull = this.#hosts.get(rest);
    if (byFull) return byFull;
    const dot = rest.indexOf('.');
    if (dot > 0 && rest.indexOf('.', dot + 1) < 0) return this.#hosts.get(rest.slice(0, dot)) ?? null;
    return null;
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
