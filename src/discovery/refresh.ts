/**
 * Scheduling for polling discovery sources (`dns`, `dns-srv`): when to ask again.
 *
 * - After a good answer: when its shortest TTL runs out, clamped to [minRefresh, maxRefresh]
 *   ({@link ttlDelay}).
 * - After a failure or an empty answer: exponential back-off with jitter ({@link Backoff}); the
 *   n-th consecutive miss waits a random time in [base/2, base], base = minRefresh × 2^(n−1)
 *   capped at 30 s (or maxRefresh when smaller), and never less than minRefresh.
 *
 * Jitter draws from the injected `random`, so tests are deterministic. p-retry is not used: it
 * retries one call with `Math.random` jitter, while a discovery poll is an endless loop whose
 * timers must be unref'd and cancelled by `stop()`.
 */

/** Back-off cap unless `maxRefresh` is smaller: the same ceiling as kubernetes discovery and undici's retry. */
const BACKOFF_CAP_MS = 30_000;

/** Delay after a good answer whose shortest TTL is `ttlSeconds` (0 when unknown). */
export function ttlDelay(ttlSeconds: number, minMs: number, maxMs: number): number {
  return Math.min(maxMs, Math.max(minMs, ttlSeconds * 1000));
}

/** Exponential back-off with equal jitter over consecutive misses; `reset()` after a good answer. */
export class Backoff {
  readonly #minMs: number;
  readonly #capMs: number;
  readonly #random: () => number;
  #misses = 0;

  constructor(minMs: number, maxMs: number, random: () => number) {
    this.#minMs = minMs;
    this.#capMs = Math.max(minMs, Math.min(maxMs, BACKOFF_CAP_MS));
    this.#random = random;
  }

  /** Count one more miss and return the delay before the next try, in ms. */
  next(): number {
    const base = Math.min(this.#capMs, this.#minMs * 2 ** this.#misses);
    if (base < this.#capMs) this.#misses++;
    return Math.max(this.#minMs, base / 2 + (this.#random() * base) / 2);
  }

  /** Consecutive misses so far. */
  get misses(): number {
    return this.#misses;
  }

  reset(): void {
    this.#misses = 0;
  }
}

/**
 * Runs `run` now, then again after the delay (ms) each run returns, until stopped. Runs never
 * overlap; timers are unref'd, so a poll never keeps the process alive. A run that throws (a bug)
 * is reported to `onCrash`, which returns the delay before the next run.
 */
export class Poller {
  readonly #run: () => Promise<number>;
  readonly #onCrash: (err: unknown) => number;
  #timer: NodeJS.Timeout | null = null;
  #stopped = false;

  constructor(run: () => Promise<number>, onCrash: (err: unknown) => number) {
    this.#run = run;
    this.#onCrash = onCrash;
  }

  start(): void {
    void this.#tick();
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  async #tick(): Promise<void> {
    this.#timer = null;
    if (this.#stopped) return;
    let delayMs: number;
    try {
      delayMs = await this.#run();
    } catch (err) {
      if (this.#stopped) return;
      delayMs = this.#onCrash(err);
    }
    if (this.#stopped) return;
    this.#timer = setTimeout(() => void this.#tick(), delayMs);
    this.#timer.unref();
  }

  /** Cancel the pending run; a run in progress finishes but schedules nothing. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }
}
