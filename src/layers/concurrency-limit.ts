/**
 * Concurrency limits per service — Envoy's circuit-breaker thresholds, in-process:
 * `maxRequests` in flight; beyond it up to `maxPendingRequests` wait in a FIFO queue for at most
 * `maxQueueTimeMs`; beyond that, or after waiting too long, the request fails fast with
 * OVERLOADED. `maxRetries` caps retries in flight at once (Envoy's max_retries; unset by default
 * because the retry budget already bounds retries).
 */
import { clampDelay } from '../core/clock.js';
import { expectObject, optNumber, rejectUnknown } from '../config/check.js';
import { optDurationMs, type Duration } from '../config/duration.js';
import { InvalidConfigError } from '../core/errors.js';
import { adaptiveToJSON, parseAdaptiveConfig, type AdaptiveLimitConfig, type ParsedAdaptive } from './adaptive-limit.js';

export interface LimitsConfig {
  /** Requests in flight at once. @default 1024 */
  maxRequests?: number;
  /** Requests allowed to wait for a free slot; 0 = fail at once. @default 1024 */
  maxPendingRequests?: number;
  /** Longest wait for a slot, ms. @default 1000 */
  maxQueueTimeMs?: Duration;
  /** Retries in flight at once. A service's limits only, not a subset's. @default unlimited (the retry budget governs) */
  maxRetries?: number;
  /**
   * Learn the in-flight limit from the upstream's latency (Netflix concurrency-limits: gradient2,
   * vegas) instead of holding `maxRequests`, which stays the ceiling. A service's limits only,
   * not a subset's. Off unless set.
   */
  adaptive?: AdaptiveLimitConfig;
}

export interface ParsedLimits {
  readonly maxRequests: number;
  readonly maxPendingRequests: number;
  readonly maxQueueTimeMs: number;
  readonly maxRetries: number;
  readonly adaptive: ParsedAdaptive | null;
}

/**
 * Parse `limits`; `adaptive` and `maxRetries` are accepted only in a service's limits (`ofService`),
 * not in a subset's: a subset's limits are in-flight slots and a queue on top of the service's.
 */
export function parseLimitsConfig(raw: unknown, path: string, ofService = false): ParsedLimits {
  const o = raw === undefined ? {} : expectObject(raw, path);
  rejectUnknown(o, ['maxRequests', 'maxPendingRequests', 'maxQueueTimeMs', 'maxRetries', 'adaptive'], path);
  if (!ofService && o.adaptive !== undefined) throw new InvalidConfigError(`${path}.adaptive`, 'only a service\'s limits adapt; a subset\'s are fixed');
  if (!ofService && o.maxRetries !== undefined) {
    throw new InvalidConfigError(`${path}.maxRetries`, 'the retry limit is the service\'s (limits.maxRetries): a subset cannot have its own');
  }
  return Object.freeze({
    maxRequests: optNumber(o, 'maxRequests', path, 1024, { integer: true, min: 1, max: 10_000_000 }),
    maxPendingRequests: optNumber(o, 'maxPendingRequests', path, 1024, { integer: true, min: 0, max: 10_000_000 }),
    maxQueueTimeMs: optDurationMs(o, 'maxQueueTimeMs', path, 1_000, { min: 0, max: 600_000 }),
    maxRetries: optNumber(o, 'maxRetries', path, Infinity, { integer: true, min: 0, max: 10_000_000 }),
    adaptive: o.adaptive === undefined ? null : parseAdaptiveConfig(o.adaptive, `${path}.adaptive`),
  });
}

/** The limits as config again (for `mesh.toJSON()`). */
export function limitsToJSON(l: ParsedLimits): Record<string, unknown> {
  const out: Record<string, unknown> = { maxRequests: l.maxRequests, maxPendingRequests: l.maxPendingRequests, maxQueueTimeMs: l.maxQueueTimeMs };
  if (l.maxRetries !== Infinity) out.maxRetries = l.maxRetries;
  if (l.adaptive !== null) out.adaptive = adaptiveToJSON(l.adaptive);
  return out;
}

/**
 * A waiting request: resumed with `admit()` or failed with `expire()`. One that ends by other
 * means while it waits (aborted, its deadline) is handed to `leave()` by its owner, so that
 * `pending` counts only the requests still waiting.
 */
export interface Waiting {
  /** Slot granted: go on. */
  admit(): void;
  /** Waited too long. */
  expire(): void;
  /** True once the request ended by other means (aborted). */
  readonly done: boolean;
  /** The limit's own: true while the request waits in its queue. */
  queued: boolean;
  /** The limit's own: when the wait runs out, on the limit's clock. */
  deadline: number;
}

export class ConcurrencyLimit {
  readonly #limits: ParsedLimits;
  readonly #now: () => number;
  active = 0;
  retries = 0;
  /** FIFO from `#head`; entries that left (`queued` false) stay until passed over or compacted. */
  #queue: Waiting[] = [];
  #head = 0;
  /** Requests waiting now: the queue's entries that have not left. */
  #waiting = 0;
  #timer: NodeJS.Timeout | null = null;
  /** Slots now: `maxRequests`, or the adaptive limit when lower (`resize`). */
  #max: number;

  constructor(limits: ParsedLimits, now: () => number) {
    this.#limits = limits;
    this.#now = now;
    this.#max = limits.maxRequests;
  }

  /** In-flight slots allowed now. */
  get max(): number {
    return this.#max;
  }

  /** How long a request may wait for a slot of this limit. */
  get maxQueueTimeMs(): number {
    return this.#limits.maxQueueTimeMs;
  }

  /** Allow `slots` in flight (capped by `maxRequests`, at least 1); a rise admits waiters at once. */
  resize(slots: number): void {
    this.#max = Math.max(1, Math.min(this.#limits.maxRequests, slots));
    this.#admitWaiting();
  }

  /** Requests waiting for a slot now (one that was aborted while waiting is not). */
  get pending(): number {
    return this.#waiting;
  }

  /** Take a slot if one is free and nobody waits (the hot path: no waiter object needed). */
  tryAcquire(): boolean {
    if (this.active < this.#max && this.#waiting === 0) {
      this.active++;
      return true;
    }
    return false;
  }

  /**
   * Take a slot: 'admitted' (go on), 'queued' (the waiter is called back later), or 'overloaded'.
   */
  acquire(waiter: Waiting): 'admitted' | 'queued' | 'overloaded' {
    if (this.active < this.#max && this.#waiting === 0) {
      this.active++;
      return 'admitted';
    }
    // Refusals are counted (and emitted) by the caller, which knows what was refused.
    if (this.#waiting >= this.#limits.maxPendingRequests || this.#limits.maxQueueTimeMs === 0) {
      return 'overloaded';
    }
    waiter.queued = true;
    waiter.deadline = this.#now() + this.#limits.maxQueueTimeMs;
    this.#queue.push(waiter);
    this.#waiting++;
    this.#arm();
    return 'queued';
  }

  /**
   * `waiter` ended while it may still be queued (its request was aborted): it waits no more. Its
   * entry is passed over later; the queue is compacted when such entries outnumber the live ones.
   */
  leave(waiter: Waiting): void {
    if (!waiter.queued) return;
    waiter.queued = false;
    this.#waiting--;
    const entries = this.#queue.length - this.#head;
    if (this.#waiting === 0) {
      this.#queue = [];
      this.#head = 0;
      this.#compact();
    } else if (entries > 64 && entries > 2 * this.#waiting) {
      this.#queue = this.#queue.slice(this.#head).filter((w) => w.queued);
      this.#head = 0;
    }
  }

  /** Give a slot back; the oldest live waiter takes it. */
  release(): void {
    this.active--;
    this.#admitWaiting();
  }

  /** The next entry still waiting, taken off the queue (one ended unnoticed leaves on the way), or undefined. */
  #shift(): Waiting | undefined {
    while (this.#head < this.#queue.length) {
      const w = this.#queue[this.#head++]!;
      if (!w.queued) continue;
      w.queued = false;
      this.#waiting--;
      if (!w.done) return w;
    }
    return undefined;
  }

  #admitWaiting(): void {
    while (this.#waiting > 0 && this.active < this.#max) {
      const w = this.#shift();
      if (w === undefined) break;
      this.active++;
      w.admit();
    }
    this.#compact();
  }

  /** May a retry start now? Counts it when yes; pair with `retryEnded`. A refusal is the caller's to count. */
  tryRetry(): boolean {
    if (this.retries >= this.#limits.maxRetries) return false;
    this.retries++;
    return true;
  }

  retryEnded(): void {
    this.retries--;
  }

  #compact(): void {
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    if (this.#waiting === 0 && this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
  }

  /** The oldest entry still waiting (entries that left before it are passed over), or undefined. */
  #first(): Waiting | undefined {
    while (this.#head < this.#queue.length && !this.#queue[this.#head]!.queued) this.#head++;
    return this.#queue[this.#head];
  }

  /** One timer for the whole queue: it fires at the oldest waiter's deadline. */
  #arm(): void {
    if (this.#timer !== null) return;
    const first = this.#first();
    if (first === undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      const now = this.#now();
      for (let w = this.#first(); w !== undefined && (w.done || !(w.deadline > now)); w = this.#first()) {
        this.#head++;
        w.queued = false;
        this.#waiting--;
        if (!w.done) w.expire();
      }
      this.#compact();
      this.#arm();
    }, clampDelay(first.deadline - this.#now(), 1, Math.max(1, this.#limits.maxQueueTimeMs)));
    // Requests wait on this timer: it keeps the process alive while any does.
  }

  /** Fail every waiter (mesh closing). */
  drain(fail: (w: Waiting) => void): void {
    for (let w = this.#shift(); w !== undefined; w = this.#shift()) fail(w);
    this.#compact();
  }
}
