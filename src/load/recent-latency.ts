/**
 * Recent latency of one endpoint at a given number of requests in flight (RIF) — the signal
 * Prequal (NSDI 2024) pairs with RIF: not "how fast was it lately" but "how fast is it when it has
 * this many requests outstanding", so a slow replica that is idle still reads slow, and a fast one
 * reads as fast as it is at its current load. Prequal's replicas report it in probe replies; here
 * the client measures it from its own requests (time to response headers), bucketed by the RIF the
 * request met when it was sent: 0, 1, 2–3, 4–7, … 64+ (log2), plus one estimate over all of them.
 *
 * Each estimate is an EWMA in the log domain, clipped and weighted by time. Measured on the
 * benchmark machine (bench/tail-latency.mjs), the caller's own stalls — a GC pause, event-loop
 * lag, another process on the core — land on every request in flight at once and read as latency
 * 5–30× the real one; peak EWMA takes such a sample whole and holds it, so fast replicas looked as
 * slow as the slow one. Here a sample's weight shrinks with the time since the previous sample
 * (time constant {@link TAU_MS}): the burst of answers a stall releases together counts about
 * once, however many requests were in flight; and one sample moves the estimate by at most a
 * factor of 8^{@link ALPHA} (≈ 1.68×). A replica that really changed is followed within a few
 * samples. (Simulated, test/support/closed-loop.ts: the time weight does most of the work; with
 * no clip, heavy stalls — 50 a second, 20 ms on average — sent the slow replica 0.4 % of requests,
 * 0.02 % with it; a tighter clip, 2^0.25, did no better there and was slower to see real change.)
 *
 * Estimates age: a sample older than {@link AGE_OUT_MS} (1 s, Prequal's probe lifetime) no longer
 * counts as current, and the next sample starts the estimate afresh — lower at once, so a replica
 * that recovered while it got no traffic reads fast at its first new answer; higher by at most 4×,
 * because the first answers after a quiet spell are the ones a stall (a burst starting, a GC) most
 * often delays. Failures (no response, a 5xx, a body cut short) are not stalls: they count as at
 * least twice the estimate and are not clipped.
 */

/** How long a sample counts as current, ms (Prequal ages probes out after about a second). */
export const AGE_OUT_MS = 1000;
/** Weight of one sample in the log-domain EWMA. */
const ALPHA = 0.25;
/** Time constant of a sample's weight, ms: a sample right after another weighs little. */
const TAU_MS = 5;
/** Largest |ln(sample / estimate)| one sample is taken at: ln 8, so at most 8^ALPHA per sample. */
const CLIP = Math.log(8);
/** After a quiet spell, the first sample raises the estimate by at most this factor. */
const RESTART_UP = 4;
/** Least latency a failure counts as, ms (as the peak EWMA's floor). */
const FAILURE_FLOOR_MS = 100;
/** Samples below this are read as this (ms), so the log stays finite. */
const MIN_MS = 0.001;
/** RIF buckets: 0, 1, 2–3, 4–7, 8–15, 16–31, 32–63, 64+. */
const BUCKETS = 8;
/** Slot of the estimate over every RIF. */
const ALL = BUCKETS;

/** The RIF bucket of `rif` (log2, capped). */
export function rifBucket(rif: number): number {
  return rif <= 0 ? 0 : Math.min(BUCKETS - 1, 32 - Math.clz32(rif));
}

export class RecentLatency {
  /**
   * Per slot (BUCKETS buckets, then ALL): estimate in ms at 2i, time of its last sample at 2i+1.
   * Made on the first sample: an endpoint never used costs no array.
   */
  #slots: Float64Array | null = null;

  /** Feed one sample: `ms` to response headers (or to the failure) of a request sent at `rif`. */
  observe(ms: number, nowMs: number, rif: number, failed: boolean): void {
    let s = this.#slots;
    if (s === null) {
      s = this.#slots = new Float64Array(2 * (BUCKETS + 1));
      for (let i = 1; i < s.length; i += 2) s[i] = -Infinity;
    }
    const x = ms > MIN_MS ? ms : MIN_MS;
    update(s, 2 * ALL, x, nowMs, failed);
    update(s, 2 * rifBucket(rif), x, nowMs, failed);
  }

  /**
   * Both readings at once, into `out`: `out[0]` = {@link ageMs}, `out[1]` = {@link atRif}. For
   * pickers that must not allocate: nothing is returned, so no double is boxed.
   */
  read(rif: number, nowMs: number, out: Float64Array): void {
    const s = this.#slots;
    if (s === null) {
      out[0] = Infinity;
      out[1] = 0;
      return;
    }
    const age = nowMs - s[2 * ALL + 1]!;
    out[0] = age;
    const b = 2 * rifBucket(rif);
    out[1] = nowMs - s[b + 1]! <= AGE_OUT_MS ? s[b]! : s[2 * ALL]!;
  }

  /** Time since the last sample, ms; Infinity before the first. */
  ageMs(nowMs: number): number {
    const s = this.#slots;
    return s === null ? Infinity : nowMs - s[2 * ALL + 1]!;
  }

  /**
   * The latency estimate for a request sent now to an endpoint with `rif` in flight: its bucket's
   * if current, else the estimate over all RIFs (current or not). 0 before the first sample.
   */
  atRif(rif: number, nowMs: number): number {
    const s = this.#slots;
    if (s === null) return 0;
    const b = 2 * rifBucket(rif);
    return nowMs - s[b + 1]! <= AGE_OUT_MS ? s[b]! : s[2 * ALL]!;
  }
}

function update(s: Float64Array, i: number, x: number, nowMs: number, failed: boolean): void {
  const m = s[i]!;
  const dt = nowMs - s[i + 1]!;
  if (dt > AGE_OUT_MS) {
    // Nothing current: start afresh — lower at once (a recovered replica), higher by at most
    // RESTART_UP (the first answer after a quiet spell is the one a stall most often delays).
    s[i] = failed ? Math.max(x, 2 * m, FAILURE_FLOOR_MS) : m > 0 && x > RESTART_UP * m ? RESTART_UP * m : x;
  } else if (failed) {
    s[i] = Math.max(x, 2 * m, FAILURE_FLOOR_MS);
  } else {
    let d = Math.log(x / m);
    if (d > CLIP) d = CLIP;
    else if (d < -CLIP) d = -CLIP;
    s[i] = m * Math.exp(ALPHA * (1 - Math.exp(-dt / TAU_MS)) * d);
  }
  s[i + 1] = nowMs;
}
