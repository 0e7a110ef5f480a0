/**
 * The concurrency layer: Envoy's circuit-breaker thresholds in-process (concurrency-limit.ts) —
 * the service's `limits`, then a subset's own limits on top when it sets them (as a
 * DestinationRule subset's connectionPool). A request holds its slots until it ends; a full
 * limit queues it (FIFO, at most `maxQueueTimeMs`) or refuses it with OVERLOADED. The service's
 * limit may adapt to the upstream's latency (`limits.adaptive`, adaptive-limit.ts). Always on (the
 * defaults are generous); the hot path is one comparison when a slot is free. Every refusal —
 * queue full, waited past `maxQueueTimeMs`, a subset's limits — goes through `#refuse`, which
 * counts it (`stats().overloaded`) and emits `overloaded` together, so the two always agree.
 */
import { OverloadedError } from '../core/errors.js';
import type { MeshEvents } from '../core/events.js';
import type { Target } from '../routing/target.js';
import type { Call } from '../request/call.js';
import type { Layer, LayerStats, Next } from '../request/layer.js';
import type { ConcurrencyLimit, Waiting } from './concurrency-limit.js';

/** A request waiting for a slot. */
interface Queued extends Waiting {
  readonly call: Call;
}

export class ConcurrencyLayer implements Layer {
  readonly name = 'concurrency';
  readonly #limit: ConcurrencyLimit;
  readonly #bySubset: ReadonlyMap<Target, ConcurrencyLimit>;
  readonly #service: string;
  readonly #events: MeshEvents;
  readonly #release = (): void => this.#limit.release();
  /** Requests refused with OVERLOADED. */
  #overloaded = 0;

  constructor(limit: ConcurrencyLimit, bySubset: ReadonlyMap<Target, ConcurrencyLimit>, deps: { service: string; events: MeshEvents }) {
    this.#limit = limit;
    this.#bySubset = bySubset;
    this.#service = deps.service;
    this.#events = deps.events;
  }

  handle(call: Call, next: Next): void {
    if (this.#limit.tryAcquire()) return this.#admitted(call, next);
    this.#queue(this.#limit, call, 'maxPendingRequests', () => this.#admitted(call, next), () => this.#limit.release());
  }

  #admitted(call: Call, next: Next): void {
    call.onEnd(this.#release);
    const subset = this.#bySubset.get(call.target);
    if (subset === undefined) return next(call);
    const release = (): void => subset.release();
    if (subset.tryAcquire()) {
      call.onEnd(release);
      return next(call);
    }
    this.#queue(subset, call, `subset ${call.target.subset}`, () => (call.onEnd(release), next(call)), release);
  }

  /** Wait for a slot of `limit` (or be refused); `admitted` runs once one is held. */
  #queue(limit: ConcurrencyLimit, call: Call, name: string, admitted: () => void, giveBack: () => void): void {
    const queued: Queued = {
      call,
      get done() {
        return call.done;
      },
      admit: () => {
        if (call.done) giveBack();
        else admitted();
      },
      // The service's queue names the wait's own limit; a subset's refusals all name the subset.
      expire: () => this.#refuse(call, name === 'maxPendingRequests' ? 'maxQueueTimeMs' : name, `waited ${limit.maxQueueTimeMs} ms for one of ${limit.max} request slots${name === 'maxPendingRequests' ? '' : ` of subset "${call.target.subset}"`}`),
    };
    const verdict = limit.acquire(queued);
    if (verdict === 'admitted') admitted();
    else if (verdict === 'overloaded') {
      this.#refuse(call, name, name === 'maxPendingRequests' ? `${limit.max} requests in flight and ${limit.pending} waiting` : `subset "${call.target.subset}" is at its limits`);
    }
  }

  /** End `call` with OVERLOADED: counted and emitted in one place, so stats and events agree. */
  #refuse(call: Call, limit: string, why: string): void {
    this.#overloaded++;
    this.#events.emit('overloaded', { service: this.#service, limit });
    call.fail(new OverloadedError(this.#service, why));
  }

  close(error: () => Error): void {
    const fail = (w: Waiting): void => (w as Queued).call.fail(error());
    this.#limit.drain(fail);
    for (const l of this.#bySubset.values()) l.drain(fail);
  }

  stats(): Partial<LayerStats> {
    return { overloaded: this.#overloaded, pending: this.#limit.pending, concurrencyLimit: this.#limit.max };
  }
}
