/**
 * Vegas, as Netflix concurrency-limits adapts TCP Vegas (`VegasLimit.java`, read, not copied):
 * the queue a limit builds is estimated from the least latency seen (rtt_noload) and the latest,
 * `queue = ceil(limit × (1 − rtt_noload / rtt))`, and the limit moves to keep it between alpha
 * and beta.
 *
 * Per latency sample (ms):
 *  1. Every probeMultiplier × limit samples (× a random jitter in [0.5, 1)), rtt_noload is reset
 *     to the sample — the upstream's no-load latency may have changed — and nothing else happens.
 *  2. A sample below rtt_noload (or the first) becomes it.
 *  3. A drop (timeout, 503, 429): limit − log10(limit).
 *  4. No change while fewer than limit / 2 requests are in flight (app-limited).
 *  5. Else with l = log10(limit) (an integer, at least 1), alpha = 3l, beta = 6l by default:
 *     queue ≤ l: limit + beta (nothing queues: grow fast); queue < alpha: limit + l;
 *     queue > beta: limit − l; otherwise unchanged.
 *  6. Clamped to [minLimit, maxLimit], then smoothed: limit × (1 − smoothing) + new × smoothing.
 */

export interface VegasOptions {
  readonly initialLimit: number;
  readonly minLimit: number;
  readonly maxLimit: number;
  readonly smoothing: number;
  /** Fixed alpha; undefined: 3 × log10(limit). */
  readonly alpha: number | undefined;
  /** Fixed beta; undefined: 6 × log10(limit). */
  readonly beta: number | undefined;
  readonly probeMultiplier: number;
}

/** log10 of the integer part of `limit`, as an integer, at least 1. */
function log10(limit: number): number {
  return Math.max(1, Math.floor(Math.log10(Math.max(1, Math.floor(limit)))));
}

export class VegasLimit {
  readonly #o: VegasOptions;
  readonly #random: () => number;
  #limit: number;
  #noLoadMs = 0;
  #probeCount = 0;
  #jitter: number;

  constructor(options: VegasOptions, random: () => number) {
    this.#o = options;
    this.#random = random;
    this.#limit = options.initialLimit;
    this.#jitter = 0.5 + random() * 0.5;
  }

  get limit(): number {
    return this.#limit;
  }

  /** The least latency seen since the last probe, ms (0 before the first sample). */
  get noLoadRttMs(): number {
    return this.#noLoadMs;
  }

  /** One latency sample with `inFlight` requests in flight; `dropped` for a timeout or an overload answer. */
  update(rttMs: number, inFlight: number, dropped: boolean): number {
    const o = this.#o;
    const limit = this.#limit;
    if (this.#jitter * o.probeMultiplier * limit <= ++this.#probeCount) {
      this.#jitter = 0.5 + this.#random() * 0.5;
      this.#probeCount = 0;
      this.#noLoadMs = rttMs;
      return limit;
    }
    if (this.#noLoadMs === 0 || rttMs < this.#noLoadMs) {
      this.#noLoadMs = rttMs;
      return limit;
    }
    const l = log10(limit);
    let next: number;
    if (dropped) next = limit - l;
    else if (inFlight * 2 < limit) return limit;
    else {
      const queue = Math.ceil(limit * (1 - this.#noLoadMs / rttMs));
      const alpha = o.alpha ?? 3 * l;
      const beta = o.beta ?? 6 * l;
      if (queue <= l) next = limit + beta;
      else if (queue < alpha) next = limit + l;
      else if (queue > beta) next = limit - l;
      else return limit;
    }
    next = Math.max(o.minLimit, Math.min(o.maxLimit, next));
    this.#limit = limit * (1 - o.smoothing) + next * o.smoothing;
    return this.#limit;
  }
}
