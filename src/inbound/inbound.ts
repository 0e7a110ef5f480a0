/**
 * The inbound half of a mesh node: the service's own server, seen by its mesh. One per mesh,
 * made by the first entry point (`mesh.inbound`, `mesh.middleware`, `mesh.fastifyPlugin`) or
 * probe handler. It holds what the entry points share — the requests in flight over all of
 * them, the open responses, the drain state — and their stats; each entry point is a door
 * (door.ts) with its own limits and load report.
 *
 * A sidecar does this on the other side of a socket. In process it is cheaper, and it sees
 * both the incoming request and the calls made while serving it: the deadline and the trace
 * context flow from one to the others (request/inbound-context.ts, layers/inbound-context.ts)
 * without the application copying a header.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Disposable, MeshEvents } from '../core/events.js';
import type { Logger } from '../core/log.js';
import { currentInbound, inboundStorage } from '../request/inbound-context.js';
import { fastifyPlugin, middleware, wrapListener, type FastifyPlugin, type Middleware, type RequestListener } from './adapters.js';
import { Door, type DoorHub, type InboundEntryStats } from './door.js';
import { parseInboundOptions } from './options.js';
import { loadOtel } from './otel.js';
import { probeHandler, type ProbeHandler } from './probes.js';
import type { InboundRequest } from './propagation.js';
import { drain, handleSignals, type DrainOptions, type SignalOptions } from './drain.js';

export type { FastifyPlugin, Middleware, RequestListener } from './adapters.js';
export type { InboundRequest } from './propagation.js';
export type { InboundOptions } from './options.js';
export type { ProbeHandler, ProbeOptions } from './probes.js';
export type { DrainOptions, SignalOptions } from './drain.js';

/** `mesh.stats().inbound`: the service's own server. */
export interface InboundStats {
  /** True once `mesh.drain()` started: readiness fails, responses get `Connection: close`. */
  draining: boolean;
  /** Requests being served now, over every entry point. */
  inFlight: number;
  /** Requests served, over every entry point. */
  requests: number;
  /** Requests refused with 503 (concurrency limits), over every entry point. */
  overloaded: number;
  /** Requests refused with 429 (rate limits), over every entry point. */
  rateLimited: number;
  /** Each entry point by name. */
  entries: Record<string, InboundEntryStats>;
}

/**
 * The request being served here — through any mesh's entry point, of either build of meshlet —
 * or undefined outside one: its request id, the time its caller left it, its propagated headers.
 */
export function inboundRequest(): InboundRequest | undefined {
  const ctx = currentInbound() as Partial<InboundRequest> | undefined;
  return ctx !== undefined && typeof ctx.remainingMs === 'function' ? (ctx as InboundRequest) : undefined;
}

export interface InboundDeps {
  readonly now: () => number;
  readonly random: () => number;
  readonly log: Logger;
  readonly events: MeshEvents;
}

export class Inbound implements DoorHub {
  readonly now: () => number;
  readonly random: () => number;
  readonly log: Logger;
  readonly events: MeshEvents;
  draining = false;
  inFlight = 0;
  readonly live = new Set<ServerResponse>();
  readonly #doors = new Map<string, Door>();
  #idle: (() => void) | null = null;
  #drain: Promise<void> | null = null;

  constructor(deps: InboundDeps) {
    this.now = deps.now;
    this.random = deps.random;
    this.log = deps.log;
    this.events = deps.events;
    inboundStorage();
    void loadOtel();
  }

  /** A new entry point of `kind`; its options are checked as `path`. */
  #door(kind: string, options: unknown, path: string): Door {
    const parsed = parseInboundOptions(options, path);
    let name = parsed.name ?? kind;
    for (let n = 2; this.#doors.has(name); n++) name = `${parsed.name ?? kind}-${n}`;
    const door = new Door(name, parsed, this);
    this.#doors.set(name, door);
    return door;
  }

  listener(listener: RequestListener, options: unknown): (req: IncomingMessage, res: ServerResponse) => void {
    return wrapListener(this.#door('http', options, 'inbound'), listener);
  }

  middleware(options: unknown): Middleware {
    return middleware(this.#door('express', options, 'middleware'));
  }

  fastifyPlugin(options: unknown): FastifyPlugin {
    return fastifyPlugin(this.#door('fastify', options, 'fastifyPlugin'));
  }

  probes(options: unknown): ProbeHandler {
    return probeHandler(options, 'probes', () => this.draining, this.log);
  }

  /** Drain (drain.ts), once: later calls get the first one's promise. @throws InvalidConfigError for bad options */
  drain(options: DrainOptions | undefined, closeMesh: (graceMs: number) => Promise<void>): Promise<void> {
    return (this.#drain ??= drain(this, options, 'drain', closeMesh));
  }

  handleSignals(options: SignalOptions | undefined, start: (options: DrainOptions) => Promise<void>): Disposable {
    return handleSignals(options, 'handleSignals', start);
  }

  /** DoorHub: a request ended. */
  ended(): void {
    if (this.inFlight === 0 && this.#idle !== null) {
      const idle = this.#idle;
      this.#idle = null;
      idle();
    }
  }

  /** Resolves when no request is in flight (now, or when the last one ends). */
  whenIdle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const before = this.#idle;
      this.#idle = () => {
        before?.();
        resolve();
      };
    });
  }

  /** Start draining: readiness fails; every response not started yet, and every later one, gets `Connection: close`. */
  startDraining(): void {
    if (this.draining) return;
    this.draining = true;
    for (const res of this.live) if (!res.headersSent) res.setHeader('connection', 'close');
  }

  stats(): InboundStats {
    const entries: Record<string, InboundEntryStats> = {};
    let requests = 0;
    let overloaded = 0;
    let rateLimited = 0;
    for (const [name, door] of this.#doors) {
      const s = (entries[name] = door.stats());
      requests += s.requests;
      overloaded += s.overloaded;
      rateLimited += s.rateLimited;
    }
    return { draining: this.draining, inFlight: this.inFlight, requests, overloaded, rateLimited, entries };
  }

  /** Stop every load sampler (the mesh closes). */
  stop(): void {
    for (const door of this.#doors.values()) door.stop();
  }
}
