/**
 * Retry policy: which outcomes are retried, how many times, with what back-off — and the safety
 * rules that are never traded for success rate.
 *
 * Semantics follow Istio's HTTPRetry and Envoy's retry policy: `attempts` is the number of
 * *retries* after the first try (Istio's meaning); `retryOn` names outcome classes; back-off is
 * Envoy's fully jittered exponential one (retry N waits uniformly in [0, (2^N − 1) × base),
 * capped at the maximum; base 25 ms, maximum 10 × base, Envoy's defaults); `Retry-After` on a
 * 429/503 is honoured up to a cap. Safety (undici's RetryHandler, DESIGN.md):
 *  - idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE, TRACE) retry on any listed outcome;
 *  - any other method only when the request provably never reached the server (connect failure);
 *  - only a replayable body is sent again: none, string, Buffer, Uint8Array, or a streamed body
 *    whose bytes were kept whole (read to its end within `perRequestBufferLimitBytes`, Envoy's
 *    per_request_buffer_limit_bytes); any other streamed body is retried only if not one byte of
 *    it was read (a connect failure);
 *  - nothing is retried once response headers went to the caller.
 */
import { InvalidConfigError } from '../core/errors.js';
import { clampDelay } from '../core/clock.js';
import { describe } from '../core/endpoint-spec.js';
import { expectList, expectObject, join, optNumber, rejectUnknown } from '../config/check.js';
import { optDurationMs, type Duration } from '../config/duration.js';
import type { AttemptOutcomeKind } from '../health/outcome.js';
import { parseBudgetConfig, type BudgetConfig, type ParsedBudget } from './retry-budget.js';

/** Outcome classes `retryOn` may name. */
export type RetryOn = '5xx' | 'gateway-error' | 'reset' | 'connect-failure' | 'retriable-status-codes';
const RETRY_ON: readonly RetryOn[] = ['5xx', 'gateway-error', 'reset', 'connect-failure', 'retriable-status-codes'];

/** Retry options of a service. */
export interface RetryConfig {
  /** Retries after the first try (Istio's `attempts`), 0–10. @default 2 */
  attempts?: number;
  /** Outcome classes to retry, a list or a comma-separated string. @default ['connect-failure', 'reset', 'retriable-status-codes'] */
  retryOn?: RetryOn[] | string;
  /** Statuses retried under `retriable-status-codes`. @default [503] */
  retriableStatusCodes?: number[];
  /** Time limit for each try until response headers, from when it has a connection (Envoy's per_try_timeout), ms; 0 = none. @default 0 */
  perTryTimeoutMs?: Duration;
  /** @deprecated use `perTryTimeoutMs` */
  perTryTimeout?: number;
  /**
   * Envoy's fully jittered exponential back-off: retry N waits uniformly in [0, (2^N − 1) × baseMs),
   * at most `maxMs` — 0–24 ms, 0–74 ms, 0–174 ms, then 250 ms at most with the defaults.
   * `baseMs` defaults to 25; `maxMs` to 10 × `baseMs` (Envoy's max_interval).
   */
  backoff?: { baseMs?: Duration; maxMs?: Duration };
  /** Longest `Retry-After` (on 429/503) honoured, ms; a longer one is not retried. @default 1000 */
  retryAfterMaxMs?: Duration;
  /**
   * Retry budget; `false` turns it off. A subset's or route's policy without one shares the
   * service's (or, when the service's `retry` is `false`, one with the defaults).
   * @default { percent: 20, minRetriesPerSecond: 10 }
   */
  budget?: BudgetConfig | false;
}

export interface ParsedRetry {
  readonly attempts: number;
  readonly retryOn: ReadonlySet<RetryOn>;
  readonly retriableStatusCodes: ReadonlySet<number>;
  readonly perTryTimeoutMs: number;
  readonly baseMs: number;
  readonly maxMs: number;
  readonly retryAfterMaxMs: number;
  /** null: no budget; undefined (a subset's or route's policy that sets none): the service's. */
  readonly budget: ParsedBudget | null | undefined;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/**
 * Parse `retry` of a service, a subset or a route; `false` → null (off); absent → defaults. A
 * service's policy without `budget` has the default budget; an override's (`scope: 'override'`)
 * has none of its own (`budget` undefined): the retry layer gives it the service's.
 */
export function parseRetryConfig(raw: unknown, path: string, scope: 'service' | 'override' = 'service'): ParsedRetry | null {
  if (raw === false) return null;
  const o = raw === undefined ? {} : expectObject(raw, path);
  rejectUnknown(o, ['attempts', 'retryOn', 'retriableStatusCodes', 'perTryTimeoutMs', 'backoff', 'retryAfterMaxMs', 'budget'], path, ['perTryTimeout']);
  let retryOn: RetryOn[] = ['connect-failure', 'reset', 'retriable-status-codes'];
  if (o.retryOn !== undefined) {
    const list = typeof o.retryOn === 'string' ? o.retryOn.split(',').map((x) => x.trim()).filter(Boolean) : o.retryOn;
    retryOn = expectList(list, join(path, 'retryOn'), `a list of ${RETRY_ON.join(', ')}`).map((v, i) => {
      if (!RETRY_ON.includes(v as RetryOn)) {
        throw new InvalidConfigError(join(join(path, 'retryOn'), i), `expected one of ${RETRY_ON.join(', ')}, got ${describe(v)}`);
      }
      return v as RetryOn;
    });
  }
  let codes = [503];
  if (o.retriableStatusCodes !== undefined) {
    codes = expectList(o.retriableStatusCodes, join(path, 'retriableStatusCodes'), 'a list of HTTP statuses').map((c, i) => {
      if (typeof c !== 'number' || !Number.isInteger(c) || c < 400 || c > 599) {
        throw new InvalidConfigError(join(join(path, 'retriableStatusCodes'), i), `expected a status from 400 to 599, got ${describe(c)}`);
      }
      return c;
    });
  }
  const backoffPath = join(path, 'backoff');
  const backoff = o.backoff === undefined ? {} : expectObject(o.backoff, backoffPath);
  rejectUnknown(backoff, ['baseMs', 'maxMs'], backoffPath);
  const baseMs = optDurationMs(backoff, 'baseMs', backoffPath, 25, { min: 1, max: 60_000 });
  // Envoy's max_interval defaults to 10 × base_interval.
  const maxMs = optDurationMs(backoff, 'maxMs', backoffPath, 10 * baseMs, { min: 1, max: 600_000 });
  if (maxMs < baseMs) throw new InvalidConfigError(join(backoffPath, 'maxMs'), `expected ≥ baseMs (${baseMs}), got ${maxMs}`);
  return Object.freeze({
    attempts: optNumber(o, 'attempts', path, 2, { integer: true, min: 0, max: 10 }),
    retryOn: new Set(retryOn),
    retriableStatusCodes: new Set(codes),
    perTryTimeoutMs: optDurationMs(o, 'perTryTimeoutMs', path, 0, { min: 0, max: 86_400_000 }, { key: 'perTryTimeout', unitMs: 1 }),
    baseMs,
    maxMs,
    retryAfterMaxMs: optDurationMs(o, 'retryAfterMaxMs', path, 1_000, { min: 0, max: 600_000 }),
    budget: o.budget === undefined && scope === 'override' ? undefined : parseBudgetConfig(o.budget, join(path, 'budget')),
  });
}

/** True when `method` may be retried after the request may have reached the server. */
export function isIdempotent(method: string): boolean {
  return IDEMPOTENT.has(method);
}

/** True when a response with `status` is retriable under `policy`. */
export function retriableStatus(policy: ParsedRetry, status: number): boolean {
  if (status < 500 || status > 599) return policy.retryOn.has('retriable-status-codes') && policy.retriableStatusCodes.has(status);
  if (policy.retryOn.has('5xx')) return true;
  if ((status === 502 || status === 503 || status === 504) && policy.retryOn.has('gateway-error')) return true;
  return policy.retryOn.has('retriable-status-codes') && policy.retriableStatusCodes.has(status);
}

/** True when a failure with no response is retriable under `policy` (safety is checked apart). */
export function retriableError(policy: ParsedRetry, kind: AttemptOutcomeKind): boolean {
  const on = policy.retryOn;
  switch (kind) {
    case 'connect-failure':
      return on.has('connect-failure') || on.has('5xx') || on.has('gateway-error');
    case 'reset':
      return on.has('reset') || on.has('5xx') || on.has('gateway-error');
    case 'timeout':
      return on.has('reset') || on.has('5xx') || on.has('gateway-error');
    default:
      return false;
  }
}

/**
 * The back-off before retry number `retry` (1-based), Envoy's JitteredBackOffStrategy: uniform in
 * [0, (2^retry − 1) × base), at most `maxMs`. As Envoy's, the window stops growing once it passed
 * `maxMs` (the delay is then `maxMs` whenever the draw lands past it). NaN → `maxMs`.
 */
export function backoffMs(policy: ParsedRetry, retry: number, random: () => number): number {
  const { baseMs: base, maxMs: max } = policy;
  let window = base;
  for (let n = 1; n < retry && window <= max; n++) window = (2 ** (n + 1) - 1) * base;
  // A random source out of [0, 1) (NaN, 5) stays within this retry's window, and the cap.
  return clampDelay(Math.floor(random() * window), 0, Math.min(window, max));
}

/**
 * Parse a Retry-After value (delta seconds or an HTTP date) into ms from `nowEpochMs`; undefined
 * when absent or malformed.
 */
export function retryAfterMs(value: string | string[] | undefined, nowEpochMs: number): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v === '') return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowEpochMs);
}
