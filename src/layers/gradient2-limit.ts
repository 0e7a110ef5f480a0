/**
 * Gradient2, Netflix concurrency-limits' default for clients (`Gradient2Limit.java`, read, not
 * copied): the limit follows the ratio of a long-term average latency to the latest sample.
 *
 * Per latency sample (ms) — concurrency-limits runs it per sample too unless windowed:
 *  1. longRtt: an exponential average over `longWindow` samples (a plain mean over the first 10).
 *     When it is more than twice the sample (load has passed), it is cut by 5 % so it catches up.
 *  2. No change while fewer than limit / 2 requests are in flight: an idle client learns nothing
 *     about the upstream's capacity (the "app-limited" rule).
 *  3. gradient = clamp(rttTolerance × longRtt / rtt, 0.5, 1): 1 while latency is within the
 *     tolerance, down to 0.5 as queues build.
 *  4. new = limit × gradient + queueSize, then smoothed: limit × (1 − smoothing) + new × smoothing,
 *     clamped to [minLimit, maxLimit]. With gradient 1 the limit grows by queueSize × smoothing a
 *     sample; with 0.5 it shrinks by up to 10 %.
 */

export interface Gradient2Options {
  readonly initialLimit: number;
  readonly minLimit: number;
  readonly maxLimit: number;
  readonly smoothing: number;
  readonly queueSize: number;
  readonly rttTolerance: number;
  readonly longWindow: number;
}

/** Samples averaged plainly before the exponential average takes over. */
const WARMUP_SAMPLES = 10;

export class Gradient2Limit {
  readonly #o: Gradient2Options;
  readonly #factor: number;
  #limit: number;
  #longRtt = 0;
  #samples = 0;

  constructor(options: Gradient2Options) {
    this.#o = options;
    this.#limit = options.initialLimit;
    this.#factor = 2 / (options.longWindow + 1);
  }

  /** The estimated limit (not rounded). */
  get limit(): number {
    return this.#limit;
  }

  /** The long-term latency average, ms. */
  get longRttMs(): number {
    return this.#longRtt;
  }

  /** One latency sample with `inFlight` requests in flight; returns the new limit. Drops are latency like any other here. */
  update(rttMs: number, inFlight: number): number {
    const o = this.#o;
    const long = this.#average(rttMs);
    if (long / rttMs > 2) this.#longRtt *= 0.95;
    if (inFlight < this.#limit / 2) return this.#limit;
    const gradient = Math.max(0.5, Math.min(1, (o.rttTolerance * long) / rttMs));
    const target = this.#limit * gradient + o.queueSize;
    const next = this.#limit * (1 - o.smoothing) + target * o.smoothing;
    this.#limit = Math.max(o.minLimit, Math.min(o.maxLimit, next));
    return this.#limit;
  }

  #average(rttMs: number): number {
    if (this.#samples < WARMUP_SAMPLES) {
      this.#samples++;
      this.#longRtt += (rttMs - this.#longRtt) / this.#samples;
    } else this.#longRtt += (rttMs - this.#longRtt) * this.#factor;
    return this.#longRtt;
  }
}
