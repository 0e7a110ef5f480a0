/**
 * The error-rate rule of an endpoint's circuit, on opossum. meshlet never calls `fire()`: the
 * request is already timed by undici, and `fire` would cost a promise and ~2 µs per call. Instead
 * each attempt's outcome is fed to opossum's own rolling window through the events its `Status`
 * listens to (`fire`, `success`, `failure`), and the threshold is judged the way opossum's `fail()`
 * does — only on a failure, since only a failure can open the circuit. One shared
 * `rotateBucketController` per service rotates every endpoint's window (no timer per endpoint,
 * opossum#809); no per-call timer (`timeout: false`), no percentiles, no snapshots, no capacity
 * semaphore (so no capacity rejection can count as a failure), no AbortController.
 *
 * The circuit's open/half-open/closed state is kept by ServiceHealth, as one model with outlier
 * detection: opening this circuit *is* an ejection.
 */
import { EventEmitter } from 'node:events';
import CircuitBreaker from 'opossum';
import type { ParsedBreaker } from './health-config.js';

const BUCKETS = 10;

/** Rotates the rolling windows of all of a service's breakers on one timer. */
export class BucketClock {
  readonly emitter = new EventEmitter();
  readonly #timer: NodeJS.Timeout;

  constructor(windowMs: number) {
    this.emitter.setMaxListeners(0);
    this.#timer = setInterval(() => this.emitter.emit('rotate'), Math.max(10, Math.floor(windowMs / BUCKETS)));
    this.#timer.unref?.();
  }

  close(): void {
    clearInterval(this.#timer);
  }
}

const noop = async (): Promise<void> => {};

export class ErrorRate {
  readonly #cb: CircuitBreaker;
  readonly #config: ParsedBreaker;

  constructor(config: ParsedBreaker, clock: BucketClock) {
    this.#config = config;
    this.#cb = new CircuitBreaker(noop, {
      timeout: false,
      resetTimeout: 2_147_483_647, // opossum never half-opens on its own: ServiceHealth decides
      errorThresholdPercentage: config.errorThresholdPercentage,
      volumeThreshold: config.volumeThreshold,
      rollingCountTimeout: config.rollingWindowMs,
      rollingCountBuckets: BUCKETS,
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
      rotateBucketController: clock.emitter,
    });
  }

  /** Count one outcome; true when the error rate now calls for opening the circuit. */
  record(failed: boolean): boolean {
    const cb = this.#cb;
    cb.emit('fire');
    if (!failed) {
      cb.emit('success');
      return false;
    }
    cb.emit('failure');
    const stats = cb.stats;
    if (stats.fires < this.#config.volumeThreshold) return false;
    return (stats.failures / stats.fires) * 100 > this.#config.errorThresholdPercentage;
  }

  /** Start a fresh window (after the circuit closes again). */
  reset(): void {
    const status = (this.#cb as unknown as { status: { increment?: unknown; window: unknown[] } }).status;
    // opossum has no public reset of its window; zero the buckets it exposes.
    for (const bucket of status.window as Record<string, number>[]) {
      for (const k of Object.keys(bucket)) if (typeof bucket[k] === 'number') bucket[k] = 0;
    }
  }

  close(): void {
    this.#cb.shutdown();
  }
}
