/**
 * Retry budget (Finagle's RetryBudget, Linkerd's retryBudget, Envoy's retry_budget): over a
 * sliding window, retries may add at most `percent` of the requests, plus a floor of
 * `minRetriesPerSecond` so a quiet service can still retry. A dead service therefore sees at most
 * (1 + percent/100) × the offered load, never a retry storm.
 *
 * Counted in ten buckets over `windowMs` (default 10 s, Linkerd's ttl); O(1) per call.
 */
import { expectObject, optNumber, rejectUnknown } from '../config/check.js';
import { optDurationMs, type Duration } from '../config/duration.js';
import { RollingPair } from '../load/rolling-window.js';

export interface BudgetConfig {
  /** Retries allowed as a percentage of requests over the window, 0–100. @default 20 */
  percent?: number;
  /** Retries always allowed per second, whatever the traffic. @default 10 */
  minRetriesPerSecond?: number;
  /** Sliding window in ms. @default 10000 */
  windowMs?: Duration;
}

export interface ParsedBudget {
  readonly percent: number;
  readonly minRetriesPerSecond: number;
  readonly windowMs: number;
}

/** The retry budget's defaults (the hedge budget has its own: layers/hedge-config.ts). */
export const RETRY_BUDGET_DEFAULTS = { percent: 20, minRetriesPerSecond: 10 } as const;

export function parseBudgetConfig(raw: unknown, path: string, defaults: { percent: number; minRetriesPerSecond: number } = RETRY_BUDGET_DEFAULTS): ParsedBudget | null {
  if (raw === false) return null;
  const o = raw === undefined ? {} : expectObject(raw, path);
  rejectUnknown(o, ['percent', 'minRetriesPerSecond', 'windowMs'], path);
  return Object.freeze({
    percent: optNumber(o, 'percent', path, defaults.percent, { min: 0, max: 100 }),
    minRetriesPerSecond: optNumber(o, 'minRetriesPerSecond', path, defaults.minRetriesPerSecond, { min: 0, max: 1_000_000 }),
    windowMs: optDurationMs(o, 'windowMs', path, 10_000, { min: 100, max: 3_600_000 }),
  });
}

export class RetryBudget {
  readonly #config: ParsedBudget;
  readonly #now: () => number;
  /** Requests (a) and retries (b) over the window. */
  readonly #window: RollingPair;
  /** Retries refused since creation. */
  exhausted = 0;
  /** When the last retry was taken, on the budget's clock: what {@link refund} takes to give that one back. */
  takenAtMs = 0;

  constructor(config: ParsedBudget, now: () => number) {
    this.#config = config;
    this.#now = now;
    this.#window = new RollingPair(config.windowMs, now());
  }

  /** Count a first try that started at `nowMs` (the request's own start: no clock read). */
  onRequest(nowMs: number): void {
    this.#window.addA(nowMs);
  }

  /** Take a retry (or a hedge) from the budget; false (and counted) when it is spent. */
  tryRetry(): boolean {
    const now = this.#now();
    const w = this.#window;
    w.advance(now);
    const allowed = (this.#config.percent / 100) * w.a + (this.#config.minRetriesPerSecond * this.#config.windowMs) / 1000;
    if (w.b + 1 > allowed) {
      this.exhausted++;
      return false;
    }
    w.addB(now);
    this.takenAtMs = now;
    return true;
  }

  /**
   * Give back what `tryRetry` took at `atMs` (default: just now), when nothing was sent after all:
   * a hedge with no endpoint to go to, a retry whose request ended during its back-off.
   */
  refund(atMs?: number): void {
    const now = this.#now();
    this.#window.removeB(now, atMs ?? now);
  }
}
