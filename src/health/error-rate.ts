/**
 * The error-rate rule of an endpoint's circuit, on opossum. meshlet never calls `fire()`: the
 * request is already timed by undici, and `fire` costs a promise and ~0.5–2 µs per call. Instead
 * each attempt's outcome is counted straight into opossum's own rolling window (`status.increment`,
 * what its `fire`/`success`/`failure` listeners do, without the event dispatch), and the threshold
 * is judged as opossum's `fail()` judges it — only on a failure, since only a failure can open the
 * circuit, and at most once per 10 ms or 8 failures (summing the window's buckets is the
 * expensive part). One shared
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

interface Window {
  increment(property: string, latency?: number): void;
  window: Record<string, number>[];
}

/** Judge the window at most this often, ms… */
const CHECK_EVERY_MS = 10;
/** …unless this many failures came since the last judgement. */
const CHECK_EVERY_FAILURES = 8;

export class ErrorRate {
  readonly #cb: CircuitBreaker;
  readonly #status: Window;
  readonly #config: ParsedBreaker;
  #checkedAt = -Infinity;
  #failuresSinceCheck = 0;

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
    this.#status = this.#cb.status as unknown as Window;
  }

  /** Count one outcome at `nowMs`; true when the error rate now calls for opening the circuit. */
  record(failed: boolean, nowMs: number): boolean {
    const status = this.#status;
    // Only fires and failures enter the rate; opossum's 'successes' would also push a latency
    // sample into an array per request, so successes are left out of the window.
    status.increment('fires');
    if (failed) status.increment('failures', 0);
    if (!failed) return false;
    // Judge after 8 failures or 10 ms, whichever comes first: a burst is seen at once, and the
    // sum over the buckets is paid for once per several failures, not on each one.
    if (++this.#failuresSinceCheck < CHECK_EVERY_FAILURES && nowMs - this.#checkedAt < CHECK_EVERY_MS) return false;
    this.#checkedAt = nowMs;
    this.#failuresSinceCheck = 0;
    let fires = 0;
    let failures = 0;
    for (const bucket of status.window) {
      fires += bucket.fires ?? 0;
      failures += bucket.failures ?? 0;
    }
    if (fires < this.#config.volumeThreshold) return false;
    return (failures / fires) * 100 > this.#config.errorThresholdPercentage;
  }

  /** Start a fresh window (after the circuit closes again). */
  reset(): void {
    // opossum has no public reset of its window; zero the buckets it exposes.
    for (const bucket of this.#status.window) {
      for (const k of Object.keys(bucket)) if (typeof bucket[k] === 'number') bucket[k] = 0;
    }
    this.#checkedAt = -Infinity;
    this.#failuresSinceCheck = 0;
  }

  close(): void {
    this.#cb.shutdown();
  }
}
