/**
 * The bounds of the numbers and durations fromIstio converts, checked where they are read, so that
 * what fromIstio returns createMesh takes: meshlet's own parsers would otherwise refuse a value at
 * a `services.<name>.…` path, which names no Istio document. Two kinds:
 *  - what Istio's validation refuses (istio/istio pkg/config/validation), or Envoy refuses when
 *    Istio programs it, is refused here too (`doc.bad`, naming the document and field);
 *  - what Istio takes but is past one of meshlet's caps is applied at the cap and reported, as
 *    `retries.attempts` above 10 is.
 * The caps are meshlet's own, enforced by its config parsers (cited at each); the tests check that
 * a value at each cap passes createMesh.
 */
import { describe as describeValue } from '../core/endpoint-spec.js';
import type { Doc } from './doc.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** meshlet's caps, each as its parser enforces it. */
export const CAP = {
  /** A fault delay: layers/fault.ts (`fixedDelayMs` ≤ 1 h). */
  faultDelayMs: HOUR,
  /** A route or try timeout: layers/route.ts, layers/retry-policy.ts (`timeoutMs`, `perTryTimeoutMs` ≤ 24 h). */
  timeoutMs: DAY,
  /** Retry back-off base: layers/retry-policy.ts (`backoff.baseMs` ≤ 60 s; its max, 10 times that, ≤ 600 s). */
  backoffMs: 60_000,
  /** Connect timeout: service/service-config.ts (`pool.connectTimeoutMs` ≤ 10 min). */
  connectTimeoutMs: 600_000,
  /** Outlier detection times and slow start: health/health-config.ts (≤ 24 h). */
  healthMs: DAY,
  /** Outlier detection's consecutive counts: health/health-config.ts (≤ 1,000,000). */
  consecutive: 1_000_000,
  /** A generated cookie's TTL: balancers/config.ts (`ttlMs` ≤ 400 days, RFC 6265bis's cap on Max-Age). */
  cookieTtlMs: 400 * DAY,
  /** Slow start aggression: health/health-config.ts (> 0 and ≤ 100). */
  aggression: 100,
} as const;

/** `ms` as a duration Istio would write: `1h`, `90s`, `250ms`. */
export function durationText(ms: number): string {
  for (const [unit, size] of [['h', HOUR], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** A duration Istio's ValidateDuration takes (pkg/config/validation/agent/validation.go): at least 1 ms. */
export function istioDuration(v: unknown, doc: Doc, path: string): number {
  const ms = doc.duration(v, path);
  if (ms < 1) doc.bad(path, `expected a duration of at least 1ms (Istio's validation refuses a shorter one), got ${durationText(ms)}`);
  return ms;
}

/**
 * `value`, or `max` when it is larger: Istio takes it, meshlet's `what` goes up to `max` — applied
 * as `max` and reported.
 */
export function atMost(value: number, max: number, doc: Doc, path: string, what: string, show: (n: number) => string = String): number {
  if (value <= max) return value;
  doc.unsupported(path, `${what} is at most ${show(max)} in meshlet: ${show(value)} is applied as ${show(max)}`);
  return max;
}

/** A duration of `ms`, or `max` when longer (applied as `max` and reported). */
export function longest(ms: number, max: number, doc: Doc, path: string, what: string): number {
  return atMost(ms, max, doc, path, what, durationText);
}

/** A whole number from `min` to `max`, else refused: `what` names it ("an HTTP status"), `why` says whose rule it is. */
export function integerIn(v: unknown, min: number, max: number, doc: Doc, path: string, what: string, why: string): number {
  const n = doc.num(v, path);
  if (!Number.isInteger(n) || n < min || n > max) doc.bad(path, `expected ${what} from ${min} to ${max} (${why}), got ${describeValue(n)}`);
  return n;
}
