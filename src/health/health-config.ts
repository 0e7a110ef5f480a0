/**
 * Configuration of endpoint health: outlier detection, circuit breaker, active health checks,
 * slow start and the panic threshold — Envoy/Istio names and defaults, times in ms.
 */
import { InvalidConfigError } from '../core/errors.js';
import { describe } from '../core/endpoint-spec.js';
import { expectList, expectObject, join, optBoolean, optNumber, optString, rejectUnknown, type Raw } from '../config/check.js';
import { optDurationMs, type Duration } from '../config/duration.js';

/** Passive outlier detection (Envoy `outlier_detection`, Istio `OutlierDetection`). On by default. */
export interface OutlierDetectionConfig {
  /** Consecutive 5xx (and, unless split, local-origin failures) that eject. 0 = off. @default 5 */
  consecutive5xxErrors?: number;
  /** Consecutive 502/503/504 (and, unless split, local-origin failures) that eject. 0 = off. @default 0 */
  consecutiveGatewayErrors?: number;
  /** Count connect failures, resets and timeouts apart from HTTP 5xx. @default false */
  splitExternalLocalOriginErrors?: boolean;
  /** With the split: consecutive local-origin failures that eject. 0 = off. @default 5 */
  consecutiveLocalOriginFailures?: number;
  /** Sweep period: failure-percentage evaluation and the ejection multiplier's decay. @default 10000 */
  intervalMs?: Duration;
  /** Ejection time = base × times ejected (capped). @default 30000 */
  baseEjectionTimeMs?: Duration;
  /** Cap on one ejection. @default 300000 */
  maxEjectionTimeMs?: Duration;
  /** Most endpoints ejected at once, percent: one is ejected only while fewer are (gRPC's rule: with none ejected one may be); 0 ejects none. @default 10 */
  maxEjectionPercent?: number;
  /** Eject endpoints whose failure share over an interval reaches `threshold` percent. Off unless set. */
  failurePercentage?: { threshold?: number; minimumHosts?: number; requestVolume?: number };
  /**
   * A passing active health check (`healthCheck`) ends an ejection at once and clears the failure
   * counts (Envoy's `successful_active_health_check_uneject_host`). Turn off when the check's path
   * does not exercise what requests do. @default true
   */
  successfulActiveHealthCheckUnejectHost?: boolean;
}

/** The error-rate circuit breaker per endpoint (opossum). On by default. */
export interface CircuitBreakerConfig {
  /** Failure percentage over the rolling window that opens the circuit. @default 50 */
  errorThresholdPercentage?: number;
  /** Requests in the window before the rate is judged. @default 20 */
  volumeThreshold?: number;
  /** Rolling window, ms. @default 10000 */
  rollingWindowMs?: Duration;
}

/** Active HTTP health checks. Off unless set. */
export interface HealthCheckConfig {
  /** Path requested, e.g. `/healthz` or `/health?full=1`: URL path and query characters, others percent-encoded. */
  path: string;
  /** @default 10000 */
  intervalMs?: Duration;
  /** Random extra delay, percent of the interval. @default 10 */
  intervalJitterPercent?: number;
  /** @default 1000 */
  timeoutMs?: Duration;
  /** Passes in a row that make an unhealthy endpoint healthy. @default 2 */
  healthyThreshold?: number;
  /** Failures in a row that make a healthy endpoint unhealthy. @default 3 */
  unhealthyThreshold?: number;
  /** Statuses that pass, inclusive range. @default [200, 399] */
  expectedStatuses?: [number, number];
}

/** Envoy's slow start. Off unless set. */
export interface SlowStartConfig {
  windowMs: Duration;
  /** @default 1 (linear) */
  aggression?: number;
  /** @default 10 */
  minWeightPercent?: number;
}

export interface ParsedOutlier {
  readonly consecutive5xx: number;
  readonly consecutiveGateway: number;
  readonly split: boolean;
  readonly consecutiveLocal: number;
  readonly intervalMs: number;
  readonly baseEjectionMs: number;
  readonly maxEjectionMs: number;
  readonly maxEjectionPercent: number;
  readonly failurePercentage: { readonly threshold: number; readonly minimumHosts: number; readonly requestVolume: number } | null;
  readonly unejectOnCheck: boolean;
}

export interface ParsedBreaker {
  readonly errorThresholdPercentage: number;
  readonly volumeThreshold: number;
  readonly rollingWindowMs: number;
}

export interface ParsedHealthCheck {
  readonly path: string;
  readonly intervalMs: number;
  readonly jitterPercent: number;
  readonly timeoutMs: number;
  readonly healthyThreshold: number;
  readonly unhealthyThreshold: number;
  readonly expected: readonly [number, number];
}

export interface ParsedSlowStart {
  readonly windowMs: number;
  readonly aggression: number;
  readonly minWeightPercent: number;
}

const INT = { integer: true, min: 0, max: 1_000_000 };

/**
 * How long an ejection lasts, how many endpoints may be ejected at once and how often the sweep
 * decays the ejection multiplier: outlier detection's settings, or these defaults (Envoy's) when
 * only the error-rate rule ejects.
 */
export const EJECTION_DEFAULTS = Object.freeze({ baseEjectionMs: 30_000, maxEjectionMs: 300_000, maxEjectionPercent: 10, intervalMs: 10_000 });
const MS = { min: 1, max: 86_400_000 };

export function parseOutlier(raw: unknown, path: string): ParsedOutlier | null {
  if (raw === false) return null;
  const o = raw === undefined ? {} : expectObject(raw, path);
  rejectUnknown(
    o,
    ['consecutive5xxErrors', 'consecutiveGatewayErrors', 'splitExternalLocalOriginErrors', 'consecutiveLocalOriginFailures', 'intervalMs', 'baseEjectionTimeMs', 'maxEjectionTimeMs', 'maxEjectionPercent', 'failurePercentage', 'successfulActiveHealthCheckUnejectHost'],
    path,
  );
  let failurePercentage: ParsedOutlier['failurePercentage'] = null;
  if (o.failurePercentage !== undefined) {
    const fp = expectObject(o.failurePercentage, join(path, 'failurePercentage'));
    const p = join(path, 'failurePercentage');
    rejectUnknown(fp, ['threshold', 'minimumHosts', 'requestVolume'], p);
    failurePercentage = {
      threshold: optNumber(fp, 'threshold', p, 85, { min: 0, max: 100 }),
      minimumHosts: optNumber(fp, 'minimumHosts', p, 5, INT),
      requestVolume: optNumber(fp, 'requestVolume', p, 50, INT),
    };
  }
  const baseEjectionMs = optDurationMs(o, 'baseEjectionTimeMs', path, EJECTION_DEFAULTS.baseEjectionMs, MS);
  return Object.freeze({
    consecutive5xx: optNumber(o, 'consecutive5xxErrors', path, 5, INT),
    consecutiveGateway: optNumber(o, 'consecutiveGatewayErrors', path, 0, INT),
    split: optBoolean(o, 'splitExternalLocalOriginErrors', path, false),
    consecutiveLocal: optNumber(o, 'consecutiveLocalOriginFailures', path, 5, INT),
    intervalMs: optDurationMs(o, 'intervalMs', path, EJECTION_DEFAULTS.intervalMs, MS),
    baseEjectionMs,
    maxEjectionMs: Math.max(baseEjectionMs, optDurationMs(o, 'maxEjectionTimeMs', path, EJECTION_DEFAULTS.maxEjectionMs, MS)),
    maxEjectionPercent: optNumber(o, 'maxEjectionPercent', path, EJECTION_DEFAULTS.maxEjectionPercent, { min: 0, max: 100 }),
    failurePercentage,
    unejectOnCheck: optBoolean(o, 'successfulActiveHealthCheckUnejectHost', path, true),
  });
}

export function parseBreaker(raw: unknown, path: string): ParsedBreaker | null {
  if (raw === false) return null;
  const o = raw === undefined ? {} : expectObject(raw, path);
  rejectUnknown(o, ['errorThresholdPercentage', 'volumeThreshold', 'rollingWindowMs'], path);
  return Object.freeze({
    errorThresholdPercentage: optNumber(o, 'errorThresholdPercentage', path, 50, { min: 1, max: 100 }),
    volumeThreshold: optNumber(o, 'volumeThreshold', path, 20, { integer: true, min: 1, max: 1_000_000 }),
    rollingWindowMs: optDurationMs(o, 'rollingWindowMs', path, 10_000, { min: 100, max: 3_600_000 }),
  });
}

/**
 * What a check's request line may carry after GET: an origin-form request target (RFC 9112 3.2.1),
 * `/` then path segments and an optional query of RFC 3986 pchar (unreserved, sub-delims, `:`, `@`,
 * `%XX`), `/` and `?`. Anything else — a space or CR/LF, which would split the request line,
 * another control character, `#`, a non-ASCII one — is refused here: undici refuses such a path
 * on every check (UND_ERR_INVALID_ARG) or a server answers 400, and the endpoints go unhealthy.
 */
const REQUEST_PATH = /^\/(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*$/;

export function parseHealthCheck(raw: unknown, path: string): ParsedHealthCheck | null {
  if (raw === undefined) return null;
  const o = expectObject(raw, path);
  rejectUnknown(o, ['path', 'intervalMs', 'intervalJitterPercent', 'timeoutMs', 'healthyThreshold', 'unhealthyThreshold', 'expectedStatuses'], path);
  const p = optString(o, 'path', path);
  if (p === undefined || !p.startsWith('/')) throw new InvalidConfigError(join(path, 'path'), `required: a path starting with "/", got ${describe(o.path)}`);
  if (!REQUEST_PATH.test(p)) {
    throw new InvalidConfigError(join(path, 'path'), `expected a request path and query of URL characters (percent-encode others: no space, control or non-ASCII character), got ${describe(p)}`);
  }
  let expected: [number, number] = [200, 399];
  if (o.expectedStatuses !== undefined) {
    const e = expectList(o.expectedStatuses, join(path, 'expectedStatuses'), '[lowest, highest] statuses');
    const status = (x: unknown): x is number => Number.isInteger(x) && (x as number) >= 100 && (x as number) <= 599;
    const [lo, hi] = e;
    if (e.length !== 2 || !status(lo) || !status(hi) || lo > hi) {
      throw new InvalidConfigError(join(path, 'expectedStatuses'), `expected [lowest, highest] statuses, got ${describe(e)}`);
    }
    expected = [lo, hi];
  }
  return Object.freeze({
    path: p,
    intervalMs: optDurationMs(o, 'intervalMs', path, 10_000, { min: 10, max: 86_400_000 }),
    jitterPercent: optNumber(o, 'intervalJitterPercent', path, 10, { min: 0, max: 100 }),
    timeoutMs: optDurationMs(o, 'timeoutMs', path, 1_000, MS),
    healthyThreshold: optNumber(o, 'healthyThreshold', path, 2, { integer: true, min: 1, max: 1000 }),
    unhealthyThreshold: optNumber(o, 'unhealthyThreshold', path, 3, { integer: true, min: 1, max: 1000 }),
    expected,
  });
}

export function parseSlowStart(raw: unknown, path: string): ParsedSlowStart | null {
  if (raw === undefined) return null;
  const o: Raw = expectObject(raw, path);
  rejectUnknown(o, ['windowMs', 'aggression', 'minWeightPercent'], path);
  if (o.windowMs === undefined) throw new InvalidConfigError(join(path, 'windowMs'), 'required: the ramp-up window in ms');
  return Object.freeze({
    windowMs: optDurationMs(o, 'windowMs', path, 0, MS),
    aggression: optNumber(o, 'aggression', path, 1, { above: 0, max: 100 }),
    minWeightPercent: optNumber(o, 'minWeightPercent', path, 10, { min: 0, max: 100 }),
  });
}
