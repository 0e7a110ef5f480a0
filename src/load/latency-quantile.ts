/**
 * A percentile of a service's recent latencies, for the hedge layer's adaptive delay ("send a
 * second copy once the first has been outstanding longer than the 95th-percentile expected
 * latency" — Dean and Barroso, "The Tail at Scale", CACM 2013).
 *
 * A log-spaced histogram (8 bins per doubling, so a bin is ~9 % wide) from 10 µs to ~10 min,
 * counted in four time slices over a sliding window: a sample costs a logarithm and two
 * increments, a slice that falls out of the window is subtracted once (O(bins), no timer: on the
 * caller's clock, as counts arrive — the scheme of rolling-window.ts). A percentile scans the
 * bins and is cached until enough new samples or a slice change make it stale. The value
 * returned is the upper edge of the bin the percentile falls in: at most ~9 % above the true
 * sample, never below it, so a hedge is never sent early by rounding.
 *
 * Node's `perf_hooks.createHistogram` (an HdrHistogram) records as cheaply, but has no window:
 * rotating and merging several for each query would cost more than these ~120 lines.
 */

const MIN_MS = 0.01;
const PER_DOUBLING = 8;
const GROWTH = 2 ** (1 / PER_DOUBLING);
const LOG_GROWTH = Math.log(GROWTH);
/** Bins from MIN_MS to MIN_MS × 2^26 ms (~11 min); longer samples land in the last bin. */
const BINS = 26 * PER_DOUBLING;
const SLICES = 4;
/** New samples after which a cached percentile is recomputed. */
const STALE_AFTER = 32;

/** The upper edge of bin `b`, ms. */
function upperEdge(b: number): number {
  return MIN_MS * GROWTH ** (b + 1);
}

export class LatencyQuantile {
  readonly #sliceMs: number;
  readonly #minSamples: number;
  readonly #slices = new Uint32Array(SLICES * BINS);
  readonly #totals = new Uint32Array(BINS);
  #epoch: number;
  #count = 0;
  #cachedP = NaN;
  #cachedMs = 0;
  #fresh = 0;

  /**
   * @param windowMs how far back samples count (split in four slices)
   * @param minSamples fewer samples than this in the window give no estimate
   */
  constructor(windowMs: number, minSamples: number, nowMs: number) {
    this.#sliceMs = windowMs / SLICES;
    this.#minSamples = minSamples;
    this.#epoch = Math.floor(nowMs / this.#sliceMs);
  }

  /** Samples in the window (as of the last call). */
  get count(): number {
    return this.#count;
  }

  /** Count a latency of `ms` observed at `nowMs`. */
  record(ms: number, nowMs: number): void {
    const slice = this.#advance(nowMs);
    const b = ms <= MIN_MS ? 0 : Math.min(BINS - 1, Math.floor(Math.log(ms / MIN_MS) / LOG_GROWTH));
    this.#slices[slice * BINS + b]!++;
    this.#totals[b]!++;
    this.#count++;
    this.#fresh++;
  }

  /**
   * The `p`-th percentile (0 < p < 100) of the window's samples, in ms (the upper edge of its
   * bin); undefined while the window holds fewer than `minSamples`.
   */
  percentile(p: number, nowMs: number): number | undefined {
    this.#advance(nowMs);
    if (this.#count < this.#minSamples) return undefined;
    if (p === this.#cachedP && this.#fresh < STALE_AFTER) return this.#cachedMs;
    const rank = Math.ceil((p / 100) * this.#count);
    let seen = 0;
    let b = 0;
    for (; b < BINS - 1; b++) {
      seen += this.#totals[b]!;
      if (seen >= rank) break;
    }
    this.#cachedP = p;
    this.#cachedMs = upperEdge(b);
    this.#fresh = 0;
    return this.#cachedMs;
  }

  /** Drop the slices that fell out of the window by `nowMs`; the index of the current slice. */
  #advance(nowMs: number): number {
    const epoch = Math.floor(nowMs / this.#sliceMs);
    const steps = epoch - this.#epoch;
    if (steps > 0) {
      for (let i = 1; i <= Math.min(steps, SLICES); i++) {
        const base = ((this.#epoch + i) % SLICES) * BINS;
        for (let b = 0; b < BINS; b++) {
          const n = this.#slices[base + b]!;
          if (n === 0) continue;
          this.#totals[b]! -= n;
          this.#count -= n;
          this.#slices[base + b] = 0;
        }
      }
      this.#epoch = epoch;
      this.#fresh = STALE_AFTER; // the window changed: recompute at the next query
    }
    return ((epoch % SLICES) + SLICES) % SLICES;
  }
}
