/**
 * The concurrency layer: Envoy's circuit-breaker thresholds in-process (concurrency-limit.ts) —
 * the service's `limits`, and a subset's own limits on top when it sets them (as a
 * DestinationRule subset's connectionPool). A request holds its slots until it ends; a full
 * limit queues it (FIFO, at most `maxQueueTimeMs`) or refuses it with OVERLOADED.
 * A request of a subset with limits takes the subset's slot first, then the service's: while it
 * waits for the subset it holds nothing — a subset at its limit never takes service slots from
 * the other subsets — and while it waits for the service it holds only the subset's slot, which
 * no other request could use before it anyway (each needs a service slot too, and the service's
 * queue is FIFO). One order for every request: no two wait on each other. The service's
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

/** A subset's own limit, and the end listeners that give its slot back: alone, or after the service's. */
interface SubsetSlots {
  readonly limit: ConcurrencyLimit;
  readonly release: () => void;
  readonly releaseBoth: () => void;
}

export class ConcurrencyLayer implements Layer {
  readonly name = 'concurrency';
  readonly #limit: ConcurrencyLimit;
  readonly #bySubset: ReadonlyMap<Target, SubsetSlots>;
  readonly #service: string;
  readonly #events: MeshEvents;
  readonly #release = (): void => this.#limit.release();
  /** Requests refused with OVERLOADED. */
  #overloaded = 0;

  constructor(limit: ConcurrencyLimit, bySubset: ReadonlyMap<Target, ConcurrencyLimit>, deps: { service: string; events: MeshEvents }) {
    this.#limit = limit;
    const slots = (l: ConcurrencyLimit): SubsetSlots => ({ limit: l, release: () => l.release(), releaseBoth: () => (limit.release(), l.release()) });
    this.#bySubset = new Map([...bySubset].map(([t, l]) => [t, slots(l)]));
    this.#service = deps.service;
    this.#events = deps.events;
  }

  handle(call: Call, next: Next): void {
    const subset = this.#bySubset.get(call.target);
    if (subset === undefined) {
      if (this.#limit.tryAcquire()) {
        call.onEnd(this.#release);
        return next(call);
      }
      return this.#queue(this.#limit, call, 'maxPendingRequests', () => (call.onEnd(this.#release), next(call)), this.#release);
    }
    if (subset.limit.tryAcquire()) return this.#inSubset(call, next, subset);
    this.#queue(subset.limit, call, `subset ${call.target.subset}`, () => this.#inSubset(call, next, subset), subset.release);
  }

  /**
   * Holding the subset's slot, take the service's. When the request ends the service's slot goes
   * back first, so that the subset's next waiter, admitted by the subset's, finds it free.
   */
  #inSubset(call: Call, next: Next, subset: SubsetSlots): void {
    if (this.#limit.tryAcquire()) {
      call.onEnd(subset.releaseBoth);
      return next(call);
    }
    let admitted = false;
    call.onEnd(() => (admitted ? subset.releaseBoth() : subset.release()));
    this.#queue(this.#limit, call, 'maxPendingRequests', () => ((admitted = true), next(call)), this.#release);
  }

  /** Wait for a slot of `limit` (or be refused); `admitted` runs once one is held. */
  #queue(limit: ConcurrencyLimit, call: Call, name: string, admitted: () => void, giveBack: () => void): void {
    const queued: Queued = {
      call,
      queued: false,
      deadline: 0,
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
    else if (verdict === 'queued') call.onEnd(() => limit.leave(queued)); // aborted while waiting: no longer pending
    else this.#refuse(call, name, name === 'maxPendingRequests' ? `${limit.max} requests in flight and ${limit.pending} waiting` : `subset "${call.target.subset}" is at its limits`);
  }

  /** End `call` with OVERLOADED: counted and emitted in one place, so stats and events agree. */
  #refuse(call: Call, limit: string, why: string): void {
    this.#overloaded++;
    this.#events.emit('overloaded', { service: this.#service, limit });
    call.fail(new OverloadedError(this.#service, why));
  }

  close(error: () => Error): void {
    const fail = (w: Waiting): void => (w as Queued).call.fail(error());
    // Subsets first: a request the service's drain fails cannot be admitted by a subset meanwhile.
    for (const s of this.#bySubset.values()) s.limit.drain(fail);
    this.#limit.drain(fail);
  }

  stats(): Partial<LayerStats> {
    // Waiting for the service's slots, or for a subset's: each request in one queue at a time.
    let pending = this.#limit.pending;
    for (const s of this.#bySubset.values()) pending += s.limit.pending;
    return { overloaded: this.#overloaded, pending, concurrencyLimit: this.#limit.max };
  }
}
