/**
 * The hot threshold of the `prequal` balancer: above it, a candidate's requests in flight (RIF)
 * make it *hot*. Prequal's is the Q_RIF quantile (≈ 0.84) of the RIFs in its pool of recent
 * probes; here it is computed exactly over every endpoint's current RIF in small fleets
 * ({@link hotThreshold}), or kept as a running estimate over sampled candidates in large ones
 * ({@link runningThreshold}). Both write into typed arrays and return nothing: a double returned
 * from, or passed to, a call the compiler does not inline is boxed, and pick must not allocate.
 * `hot` / `out` slots: [0] the threshold, [1] the running quantile, [2] the running mean RIF,
 * [3] the quantile asked for (`hotQuantile`).
 */

/** Running threshold: step per value, relative to the mean RIF + 1; weight of a value in the mean. */
const STEP = 0.05;
const MEAN_WEIGHT = 0.02;

/**
 * The sampled mode's hot threshold, updated with each pick's candidates in
 * O(1), no sort: a stochastic-approximation quantile (each value above the estimate raises it by
 * `q × step`, each other one lowers it by `(1 − q) × step`, so it settles where a share 1 − q of
 * values lie above), with the step scaled by the running mean RIF + 1 so that it fits both a
 * fleet at 0–2 in flight and one at 50. The threshold is the quantile capped at twice the mean + 1,
 * as {@link hotThreshold}'s.
 */
export function runningThreshold(rifs: Float64Array, m: number, hot: Float64Array): void {
  const q = hot[3]!;
  let quantile = hot[1]!;
  let mean = hot[2]!;
  for (let i = 0; i < m; i++) {
    const x = rifs[i]!;
    const step = STEP * (mean + 1);
    quantile = x > quantile ? quantile + q * step : Math.max(0, quantile - (1 - q) * step);
    mean += MEAN_WEIGHT * (x - mean);
  }
  hot[1] = quantile;
  hot[2] = mean;
  const cap = 2 * mean + 1;
  hot[0] = quantile < cap ? quantile : cap;
}

/**
 * The hot threshold of `values[0..m)`, written to `out[0]`: their `out[3]` quantile (linear between
 * order statistics, sorted into `scratch` by insertion: m ≤ max(16, choiceCount) ≤ 100), but at most twice their
 * mean + 1. The cap matters in small fleets, where the 0.84 quantile of five is nearly the
 * busiest: without it, two replicas whose estimates happen to be lowest could take 15 requests
 * each while three sit idle. (Written, not returned: a returned double may be boxed.)
 */
export function hotThreshold(values: Float64Array, m: number, scratch: Float64Array, out: Float64Array): void {
  const q = out[3]!;
  let sum = 0;
  for (let i = 0; i < m; i++) {
    const v = values[i]!;
    sum += v;
    let j = i;
    while (j > 0 && scratch[j - 1]! > v) {
      scratch[j] = scratch[j - 1]!;
      j--;
    }
    scratch[j] = v;
  }
  const pos = q * (m - 1);
  const lo = Math.floor(pos);
  const quantile = lo + 1 < m ? scratch[lo]! + (pos - lo) * (scratch[lo + 1]! - scratch[lo]!) : scratch[lo]!;
  const cap = (2 * sum) / m + 1;
  out[0] = quantile < cap ? quantile : cap;
}
