/**
 * One inbound entry point (a wrapped listener, a middleware, a Fastify plugin): what happens to
 * each request at the door, the same for all three (adapters.ts only speaks their dialects).
 *
 *  1. The rate limit (a token bucket, layers/rate-limit.ts): empty → 429 with `Retry-After`.
 *  2. The concurrency limit (layers/concurrency-limit.ts, adaptive with layers/adaptive-limit.ts
 *     fed by the handler's latency): full → 503 with `Retry-After`. No queue: a server that
 *     refuses at once lets the caller retry elsewhere (meshlet clients honour `Retry-After`).
 *     A refusal carries the load report and counts in it, as an error (load-report.ts).
 *  3. Admitted: the request's context (deadline, propagated headers: propagation.ts) is made and
 *     kept in the AsyncLocalStorage while it is served — the adapter runs the handler in it, and
 *     the request's events run in it too (an `'end'` listener reading the body is called from
 *     the socket's context otherwise, and would lose it); the load report header is set, and
 *     `Connection: close` while the mesh drains.
 *  4. When the response closes, the slot is given back, the latency fed to the adaptive limit and
 *     the outcome counted.
 */
import { AsyncResource } from 'node:async_hooks';
import type { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MeshEvents } from '../core/events.js';
import type { Logger } from '../core/log.js';
import { AdaptiveLimit } from '../layers/adaptive-limit.js';
import { ConcurrencyLimit } from '../layers/concurrency-limit.js';
import { TokenBucket } from '../layers/rate-limit.js';
import { inboundStorage } from '../request/inbound-context.js';
import { requestBudgetMs } from './deadline.js';
import { LOAD_METRICS_HEADER, LoadSampler } from './load-report.js';
import type { ParsedInbound } from './options.js';
import { propagatedNames, RequestContext } from './propagation.js';

/** What a door needs of the mesh's inbound side (inbound.ts). */
export interface DoorHub {
  readonly now: () => number;
  readonly random: () => number;
  readonly log: Logger;
  readonly events: MeshEvents;
  /** True once the mesh drains. */
  readonly draining: boolean;
  /** Requests in flight over every entry point. */
  inFlight: number;
  /** Responses still open, to be told `Connection: close` when a drain starts. */
  readonly live: Set<ServerResponse>;
  /** A request ended. */
  ended(): void;
}

/** A request turned away at the door. */
export interface Refusal {
  readonly status: 429 | 503;
  readonly retryAfter: string;
  readonly text: string;
}

/** One entry point's numbers in `mesh.stats().inbound.entries`. */
export interface InboundEntryStats {
  /** Requests being served now. */
  inFlight: number;
  /** Requests served (their response closed). */
  requests: number;
  /** Requests that carried a deadline (`grpc-timeout`, `x-envoy-expected-rq-timeout-ms`, `x-meshlet-deadline-ms`). */
  withDeadline: number;
  /** Requests refused with 503 by the concurrency limit. */
  overloaded: number;
  /** Requests refused with 429 by the rate limit. */
  rateLimited: number;
  /** Requests served at once allowed now (`maxRequests`, or the adaptive limit); null without limits. */
  concurrencyLimit: number | null;
}

export class Door {
  readonly name: string;
  readonly #hub: DoorHub;
  readonly #names: readonly string[];
  readonly #limit: ConcurrencyLimit | null;
  readonly #adaptive: AdaptiveLimit | null;
  readonly #bucket: TokenBucket | null;
  readonly #sampler: LoadSampler | null;
  readonly #overloaded: Refusal;
  readonly #rateLimited: Refusal;
  readonly #stats: InboundEntryStats = { inFlight: 0, requests: 0, withDeadline: 0, overloaded: 0, rateLimited: 0, concurrencyLimit: null };

  constructor(name: string, options: ParsedInbound, hub: DoorHub) {
    this.name = name;
    this.#hub = hub;
    this.#names = propagatedNames(options.propagate);
    const limits = options.limits;
    this.#limit = limits === null ? null : new ConcurrencyLimit(limits, hub.now);
    const deps = { service: `inbound:${name}`, events: hub.events, random: hub.random, log: hub.log };
    this.#adaptive = limits?.adaptive ? new AdaptiveLimit(limits.adaptive, this.#limit!, deps) : null;
    this.#bucket = options.rateLimit === null ? null : new TokenBucket(options.rateLimit, hub.now());
    this.#sampler = options.loadReports === null ? null : new LoadSampler(options.loadReports, hub);
    this.#overloaded = Object.freeze({ status: 503, retryAfter: String(options.retryAfterSeconds), text: `inbound ${name}: overloaded\n` });
    // An empty bucket has a token again within 1 / rate.
    const refillS = options.rateLimit === null ? 1 : Math.max(1, Math.ceil(1 / options.rateLimit.requestsPerSecond));
    this.#rateLimited = Object.freeze({ status: 429, retryAfter: String(refillS), text: `inbound ${name}: rate limited\n` });
  }

  /**
   * Take a request in: the async scope of its context (run the handler with
   * `scope.runInAsyncScope`), or why it is refused (the adapter answers with it).
   */
  enter(req: IncomingMessage, res: ServerResponse): AsyncResource | Refusal {
    const hub = this.#hub;
    const s = this.#stats;
    const now = hub.now();
    if (this.#bucket !== null && !this.#bucket.tryTake(now)) return this.#refuse(res, this.#rateLimited, 'rate-limit');
    if (this.#limit !== null && !this.#limit.tryAcquire()) return this.#refuse(res, this.#overloaded, 'concurrency');
    const budgetMs = requestBudgetMs(req.headers);
    if (budgetMs !== Infinity) s.withDeadline++;
    const ctx = new RequestContext(req.headers, this.#names, now + budgetMs, hub.now);
    if (this.#sampler !== null) res.setHeader(LOAD_METRICS_HEADER, this.#sampler.header(hub.inFlight));
    if (hub.draining) res.setHeader('connection', 'close');
    hub.inFlight++;
    s.inFlight++;
    hub.live.add(res);
    // One AsyncLocalStorage.run per request: the scope keeps its frame, and entering it again
    // (the handler, each event) is cheap — a run per event costs ten times more.
    const scope = inboundStorage().run(ctx, newScope);
    bindEvents(req, scope);
    res.on('close', () => this.#end(res, now)); // 'close' comes once
    return scope;
  }

  /**
   * A refusal is a response like any other in the load report: it carries the report, and it is
   * counted (an error: eps), so that a server refusing most of its requests does not look idle
   * to the callers' weighted-round-robin.
   */
  #refuse(res: ServerResponse, refusal: Refusal, limit: string): Refusal {
    if (refusal.status === 429) this.#stats.rateLimited++;
    else this.#stats.overloaded++;
    const sampler = this.#sampler;
    if (sampler !== null) {
      res.setHeader(LOAD_METRICS_HEADER, sampler.header(this.#hub.inFlight));
      sampler.count(refusal.status);
    }
    this.#hub.events.emit('inbound-refused', { entry: this.name, status: refusal.status, limit });
    return refusal;
  }

  #end(res: ServerResponse, startMs: number): void {
    const hub = this.#hub;
    const s = this.#stats;
    hub.inFlight--;
    s.inFlight--;
    s.requests++;
    hub.live.delete(res);
    const status = res.statusCode;
    this.#limit?.release();
    if (this.#adaptive !== null) {
      const now = hub.now();
      this.#adaptive.observe(!res.writableFinished ? 'cancelled' : status >= 500 ? 'http-5xx' : 'success', status, now - startMs, now);
    }
    this.#sampler?.count(status);
    hub.ended();
  }

  stats(): InboundEntryStats {
    return { ...this.#stats, concurrencyLimit: this.#limit === null ? null : this.#limit.max };
  }

  /** Stop the load sampler's timer. */
  stop(): void {
    this.#sampler?.stop();
  }
}

/** True for a refusal (else the request was admitted). */
export function isRefusal(v: AsyncResource | Refusal): v is Refusal {
  return !(v instanceof AsyncResource);
}

/** An async scope made in the current context (the request's, inside its `run`). */
const newScope = (): AsyncResource => new AsyncResource('meshlet.inbound');

/**
 * Events `emitter` emits from now on run in `scope`, whoever emits them; only those with a
 * listener need it (a stream emits many that nobody listens to).
 */
function bindEvents(emitter: EventEmitter, scope: AsyncResource): void {
  const emit = emitter.emit;
  emitter.emit = function (this: EventEmitter, event: string | symbol) {
    if (this.listenerCount(event) === 0) return Reflect.apply(emit, this, arguments) as boolean; // eslint-disable-line prefer-rest-params
    return scope.runInAsyncScope(Reflect.apply, null, emit, this, arguments) as boolean; // eslint-disable-line prefer-rest-params
  } as EventEmitter['emit'];
}
