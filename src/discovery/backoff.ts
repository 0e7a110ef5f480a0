/**
 * The one back-off of discovery: DNS re-resolution after a failure, the Kubernetes relist and
 * re-watch, reading the Service for pod labels. It is p-retry's, through its public options:
 * the n-th consecutive failure waits `min(minMs × 2^(n−1) × r, maxMs)`, r a random factor in
 * [1, 2) (p-retry's `randomize`), forever (`retries: Infinity`), on an unref'd timer that
 * `signal` cancels. The cap applies after the jitter (p-retry's `maxTimeout`), so once
 * `minMs × 2^(n−1)` reaches `maxMs` every delay is exactly `maxMs`: settled, the tries come at a
 * fixed period. Clients that failed together stay spread only by their earlier, jittered delays
 * (p-retry's public options offer no jitter past the cap, and the delays are not computed here).
 * A call that succeeds ends the run, so the next run starts from `minMs` again: "a good answer
 * resets the back-off".
 *
 * The jitter comes from p-retry's `Math.random`; tests that need exact delays pin `Math.random`,
 * and tests that count attempts use fake timers and the bounds above, which hold for any draw.
 *
 * Kubernetes uses client-go's reflector numbers (0.8 s doubling, 30 s cap): 0.8–1.6 s, 1.6–3.2 s,
 * …, 25.6–30 s, then exactly 30 s from the 7th failure in a row (client-go jitters after its cap,
 * 30–60 s; this back-off does not). DNS uses [minRefreshMs, min(maxRefreshMs, 30 s)], likewise
 * exactly the cap once settled.
 */
import pRetry from 'p-retry';

/** Bounds of one back-off, in ms. */
export interface BackoffBounds {
  /** First delay (before jitter); also the floor of every delay. */
  readonly minMs: number;
  /** Ceiling of every delay, jitter included. */
  readonly maxMs: number;
}

/** client-go's reflector: 800 ms doubling to 30 s, jitter 1.0. */
export const KUBERNETES_BACKOFF: BackoffBounds = Object.freeze({ minMs: 800, maxMs: 30_000 });

/** The DNS back-off is capped here unless `maxRefreshMs` is smaller. */
export const DNS_BACKOFF_CAP_MS = 30_000;

export interface RetryOptions extends BackoffBounds {
  /** Ends the loop: the returned promise rejects with the signal's reason. */
  readonly signal: AbortSignal;
  /** Every failure, with the delay before the next try (ms). Not called once `signal` aborted. */
  readonly onFailure: (err: Error, attempt: number, delayMs: number) => void;
  /** A failure that should end the loop instead (the promise rejects with it). @default retry everything */
  readonly shouldRetry?: (err: Error) => boolean;
}

/**
 * Call `fn` until it resolves, backing off between failures as described above. Rejects only
 * when `signal` aborts (with its reason) or `shouldRetry` says no.
 */
export function retryWithBackoff<T>(fn: (attempt: number) => Promise<T>, o: RetryOptions): Promise<T> {
  return pRetry(
    // p-retry gives up at once on a TypeError (a bug, to it); a discovery loop reports it and goes on.
    (attempt) => fn(attempt).catch((err: unknown) => Promise.reject(asRetriable(err))),
    {
      retries: Infinity,
      factor: 2,
      minTimeout: o.minMs,
      maxTimeout: o.maxMs,
      randomize: true,
      signal: o.signal,
      unref: true,
      onFailedAttempt: ({ error, attemptNumber, retryDelay }) => o.onFailure(error, attemptNumber, retryDelay),
      shouldRetry: ({ error }) => o.shouldRetry?.(error) ?? true,
    },
  );
}

function asRetriable(err: unknown): Error {
  if (err instanceof TypeError) return new Error(err.message, { cause: err });
  return err instanceof Error ? err : new Error(String(err));
}

/**
 * Resolve after `ms` on an unref'd timer, or reject with the signal's reason when it aborts
 * first. The global `setTimeout`, so fake timers drive it.
 */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    timer.unref();
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
