/**
 * The shared life of a polled discovery source (`dns`, `dns-srv`, and the next one): refresh now,
 * then again when the refresh says (a TTL), backing off after failures, until stopped.
 *
 * A refresh resolves with the delay before the next one, or throws to be retried with back-off
 * (backoff.ts). It publishes and reports (`ctx.error`) what it learnt itself — partial answers
 * too — and throws {@link RetrySoon} to say "reported; ask again soon". Anything else it throws
 * is a bug: reported here as "unexpected", then retried the same way.
 *
 * Every timer is unref'd (a poll never keeps the process alive); `stop()` — or the mesh's abort
 * signal — cancels the pending wait and the back-off, calls the source's `release` (cancel
 * queries, drop timers), and nothing is pushed or reported afterwards.
 */
import { retryWithBackoff, sleep, type BackoffBounds } from './backoff.js';
import type { DiscoveryContext, DiscoverySource } from './discovery.js';

/** Thrown by a refresh that has reported its problem and wants to be asked again with back-off. */
export class RetrySoon extends Error {
  constructor(reason = 'retry with back-off') {
    super(reason);
    this.name = 'RetrySoon';
  }
}

export interface PollingOptions {
  /** Prefix of reported messages, e.g. `dns discovery: web.test`. */
  readonly what: string;
  /** Back-off after failures; the delay a refresh returns is clamped to [minMs, refreshCapMs]. */
  readonly backoff: BackoffBounds;
  /** Longest delay a successful refresh may ask for, in ms. */
  readonly refreshCapMs: number;
  /** One refresh; resolves with ms until the next. `signal` aborts when the source stops. */
  readonly refresh: (signal: AbortSignal) => Promise<number>;
  /** Release what the source holds (called once, on stop). */
  readonly release: () => void;
}

/** A running polled source. */
export class PollingSource implements DiscoverySource {
  readonly #ctx: DiscoveryContext;
  readonly #o: PollingOptions;
  readonly #stop = new AbortController();
  readonly #onAbort = (): void => this.stop();

  constructor(ctx: DiscoveryContext, o: PollingOptions) {
    this.#ctx = ctx;
    this.#o = o;
    if (ctx.signal.aborted) {
      this.stop();
      return;
    }
    ctx.signal.addEventListener('abort', this.#onAbort, { once: true });
    void this.#loop();
  }

  /** True once stopped: a refresh in progress checks it before publishing. */
  get stopped(): boolean {
    return this.#stop.signal.aborted;
  }

  async #loop(): Promise<void> {
    const signal = this.#stop.signal;
    const { minMs } = this.#o.backoff;
    const clamp = (ms: number): number => (Number.isFinite(ms) ? Math.min(this.#o.refreshCapMs, Math.max(minMs, ms)) : minMs);
    try {
      for (;;) {
        const next = await retryWithBackoff(() => this.#o.refresh(signal), {
          ...this.#o.backoff,
          signal,
          onFailure: (err, attempt, delayMs) => {
            if (this.stopped) return;
            if (!(err instanceof RetrySoon)) this.#ctx.error(new Error(`${this.#o.what} failed (unexpected: ${err.message}); keeping the last good endpoints`));
            this.#ctx.log.debug(`${this.#o.what}: miss ${attempt}, next refresh in ${delayMs} ms (back-off)`);
          },
        });
        const delayMs = clamp(next);
        this.#ctx.log.debug(`${this.#o.what}: next refresh in ${delayMs} ms`);
        await sleep(delayMs, signal);
      }
    } catch {
      // stopped: the signal's reason
    }
  }

  stop(): void {
    if (this.stopped) return;
    this.#stop.abort();
    this.#ctx.signal.removeEventListener('abort', this.#onAbort);
    this.#o.release();
  }
}
