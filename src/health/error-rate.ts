/**
 * The error-rate rule of an endpoint's circuit: the share of failed attempts over a rolling
 * window, judged once at least `volumeThreshold` attempts fell in it — opossum's
 * `errorThresholdPercentage` / `volumeThreshold` / `rollingCountTimeout` semantics, as an outcome
 * observer. opossum itself only counts calls it runs through `fire()`; an attempt is not such a
 * call (undici runs and times it), so the window is kept here (load/rolling-window.ts: O(1) per
 * outcome, no timer, on the injected clock).
 *
 * Opening the circuit is ServiceHealth's decision, as one model with outlier detection: opening
 * this circuit *is* an ejection.
 */
import { RollingPair } from '../load/rolling-window.js';
import type { ParsedBreaker } from './health-config.js';

export class ErrorRate {
  readonly #config: ParsedBreaker;
  /** Attempts (a) and failures (b) over the window. */
  readonly #window: RollingPair;

  constructor(config: ParsedBreaker, nowMs: number) {
    this.#config = config;
    this.#window = new RollingPair(config.rollingWindowMs, nowMs);
  }

  /** Count one outcome at `nowMs`; true when the error rate now calls for opening the circuit. */
  record(failed: boolean, nowMs: number): boolean {
    const w = this.#window;
    w.addA(nowMs);
    if (!failed) return false;
    w.addB(nowMs);
    if (w.a < this.#config.volumeThreshold) return false;
    return (w.b / w.a) * 100 > this.#config.errorThresholdPercentage;
  }

  /** Start a fresh window (after the circuit closes again). */
  reset(): void {
    this.#window.reset();
  }
}
