/**
 * The error-rate rule of an endpoint's circuit: the share of failed attempts over a rolling
 * window (10 buckets), judged once at least `volumeThreshold` attempts fell in it — opossum's
 * `errorThresholdPercentage` / `volumeThreshold` / `rollingCountTimeout` semantics, as an outcome
 * observer. opossum itself only counts calls it runs through `fire()`; an attempt is not such a
 * call (undici runs and times it), so the window is kept here: O(1) per outcome, running totals,
 * no timer (buckets rotate on the injected clock as outcomes arrive). opossum serves where a
 * breaker wraps a promise: the service-level breaker (layers/service-breaker.ts).
 *
 * Opening the circuit is ServiceHealth's decision, as one model with outlier detection: opening
 * this circuit *is* an ejection.
 */
import type { ParsedBreaker } from './health-config.js';

const BUCKETS = 10;

export class ErrorRate {
  readonly #config: ParsedBreaker;
  readonly #bucketMs: number;
  readonly #fires = new Float64Array(BUCKETS);
  readonly #failures = new Float64Array(BUCKETS);
  #epoch: number;
  #totalFires = 0;
  #totalFailures = 0;

  constructor(config: ParsedBreaker, nowMs: number) {
    this.#config = config;
    this.#bucketMs = config.rollingWindowMs / BUCKETS;
    this.#epoch = Math.floor(nowMs / this.#bucketMs);
  }

  /** Drop the buckets that fell out of the window by `nowMs`; the index of the current one. */
  #advance(nowMs: number): number {
    const epoch = Math.floor(nowMs / this.#bucketMs);
    const steps = epoch - this.#epoch;
    if (steps > 0) {
      for (let i = 1; i <= Math.min(steps, BUCKETS); i++) {
        const b = (this.#epoch + i) % BUCKETS;
        this.#totalFires -= this.#fires[b]!;
        this.#totalFailures -= this.#failures[b]!;
        this.#fires[b] = 0;
        this.#failures[b] = 0;
      }
      this.#epoch = epoch;
    }
    return ((epoch % BUCKETS) + BUCKETS) % BUCKETS;
  }

  /** Count one outcome at `nowMs`; true when the error rate now calls for opening the circuit. */
  record(failed: boolean, nowMs: number): boolean {
    const b = this.#advance(nowMs);
    this.#fires[b]!++;
    this.#totalFires++;
    if (!failed) return false;
    this.#failures[b]!++;
    this.#totalFailures++;
    if (this.#totalFires < this.#config.volumeThreshold) return false;
    return (this.#totalFailures / this.#totalFires) * 100 > this.#config.errorThresholdPercentage;
  }

  /** Start a fresh window (after the circuit closes again). */
  reset(): void {
    this.#fires.fill(0);
    this.#failures.fill(0);
    this.#totalFires = 0;
    this.#totalFailures = 0;
  }
}
