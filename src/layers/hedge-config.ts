/**
 * Hedging policy (gRPC A6's hedgingPolicy, Envoy's HedgePolicy): when a request has been
 * outstanding for the hedge delay, a copy goes to another endpoint; the first response wins and
 * the others are cancelled. The delay is fixed (`delayMs`), a percentile of the service's recent
 * latencies (`delayPercentile`, the default: 95, "The Tail at Scale"), or the retry policy's
 * per-try timeout (`hedgeOnPerTryTimeout`, Envoy's simple form: the try that timed out is not
 * cancelled). Hedges are bounded by `maxAttempts` per try (each retry races anew) and by a budget over the service's
 * requests, as retries are. Only idempotent methods are hedged unless a route opts in
 * (`allowNonIdempotent`); the body must be replayable.
 */
import { InvalidConfigError } from '../core/errors.js';
import { describe } from '../core/endpoint-spec.js';
import { expectObject, join, optNumber, rejectUnknown } from '../config/check.js';
import { optDurationMs, type Duration } from '../config/duration.js';
import { parseBudgetConfig, type ParsedBudget } from './retry-budget.js';

/** The hedge budget: the retry budget's fields (layers/retry-budget.ts), counting hedges, with its own defaults. */
export interface HedgeBudgetConfig {
  /** Hedges allowed as a percentage of requests over the window, 0–100. @default 5 */
  percent?: number;
  /** Hedges always allowed per second, whatever the traffic (the retry budget's name). @default 1 */
  minRetriesPerSecond?: number;
  /** Sliding window in ms. @default 10000 */
  windowMs?: Duration;
}

/** Hedging options of a service or a route. */
export interface HedgeConfig {
  /**
   * A fixed hedge delay: how long the first copy may run before the next one is sent (ms, or a
   * duration such as `'10ms'`). Give one of `delayMs`, `delayPercentile`, `hedgeOnPerTryTimeout`.
   */
  delayMs?: Duration;
  /**
   * An adaptive hedge delay: this percentile (50–99.9) of the service's latencies to response
   * headers over the last 10 s. No hedge is sent until 100 responses were seen in that window.
   * @default 95
   */
  delayPercentile?: number;
  /** Least adaptive delay, ms. @default 0 */
  minDelayMs?: Duration;
  /** Most adaptive delay, ms; absent = no cap. */
  maxDelayMs?: Duration;
  /**
   * Envoy's `hedge_on_per_try_timeout`: the delay is the retry policy's `perTryTimeoutMs`, timed
   * from when each copy has its connection, and a try that reaches it is not cancelled — a copy
   * races it, on an endpoint already tried when no other is left (as Envoy's retry may go to the
   * same host). Needs a per-try timeout. @default false
   */
  hedgeOnPerTryTimeout?: boolean;
  /** Copies of a request in flight at most, the first included (gRPC's `maxAttempts`), 2–5. @default 2 */
  maxAttempts?: number;
  /**
   * Statuses that do not end the race while another copy is still running: that copy may still
   * answer (gRPC's `nonFatalStatusCodes`). @default [502, 503, 504]
   */
  nonFatalStatuses?: number[];
  /**
   * Hedges as a share of requests over a sliding window, plus a floor per second (the retry
   * budget's fields, counting hedges); `false` turns it off. The service's policy and each
   * route's have their own budget, over the requests they cover.
   * @default { percent: 5, minRetriesPerSecond: 1 }
   */
  budget?: HedgeBudgetConfig | false;
  /** Routes only: hedge this route's non-idempotent requests too (POST, PATCH). @default false */
  allowNonIdempotent?: boolean;
}

export interface ParsedHedge {
  /** The fixed delay, ms, or null when adaptive or on the per-try timeout. */
  readonly delayMs: number | null;
  /** The adaptive delay's percentile, or null. */
  readonly delayPercentile: number | null;
  readonly minDelayMs: number;
  /** Infinity: no cap. */
  readonly maxDelayMs: number;
  readonly hedgeOnPerTryTimeout: boolean;
  readonly maxAttempts: number;
  readonly nonFatalStatuses: ReadonlySet<number>;
  readonly budget: ParsedBudget | null;
  readonly allowNonIdempotent: boolean;
}

/** The hedge budget's defaults: a few percent, as "The Tail at Scale" reports for hedging at p95. */
export const HEDGE_BUDGET_DEFAULTS = { percent: 5, minRetriesPerSecond: 1 } as const;
/** The adaptive delay's window and the samples it needs before hedging. */
export const HEDGE_WINDOW_MS = 10_000;
export const HEDGE_MIN_SAMPLES = 100;

const KEYS = ['delayMs', 'delayPercentile', 'minDelayMs', 'maxDelayMs', 'hedgeOnPerTryTimeout', 'maxAttempts', 'nonFatalStatuses', 'budget', 'allowNonIdempotent'];

/**
 * Parse `hedge` of a service (`route: false`) or a route: `false` → null (off), `true` or an
 * object → a policy, absent → undefined (a route inherits; a service does not hedge).
 */
export function parseHedgeConfig(raw: unknown, path: string, where: { route: boolean }): ParsedHedge | null | undefined {
  if (raw === undefined) return undefined;
  if (raw === false) return null;
  const o = raw === true ? {} : expectObject(raw, path);
  rejectUnknown(o, KEYS, path);
  const given = (['delayMs', 'delayPercentile', 'hedgeOnPerTryTimeout'] as const).filter((k) => o[k] !== undefined && o[k] !== false);
  if (given.length > 1) throw new InvalidConfigError(join(path, given[1]!), `give one of delayMs, delayPercentile and hedgeOnPerTryTimeout, not ${given.join(' and ')}`);
  for (const k of ['hedgeOnPerTryTimeout', 'allowNonIdempotent'] as const) {
    if (o[k] !== undefined && typeof o[k] !== 'boolean') throw new InvalidConfigError(join(path, k), `expected true or false, got ${describe(o[k])}`);
  }
  if (o.allowNonIdempotent === true && !where.route) {
    throw new InvalidConfigError(join(path, 'allowNonIdempotent'), 'only a route may opt non-idempotent requests in to hedging (routes[i].hedge.allowNonIdempotent)');
  }
  const fixed = optDurationMs(o, 'delayMs', path, undefined, { min: 0, max: 600_000 });
  const onPerTry = o.hedgeOnPerTryTimeout === true;
  const adaptive = fixed === undefined && !onPerTry;
  const minDelayMs = optDurationMs(o, 'minDelayMs', path, 0, { min: 0, max: 600_000 });
  const maxDelayMs = optDurationMs(o, 'maxDelayMs', path, Infinity, { min: 0, max: 600_000 });
  if (!adaptive) {
    for (const k of ['minDelayMs', 'maxDelayMs'] as const) {
      if (o[k] !== undefined) throw new InvalidConfigError(join(path, k), 'bounds an adaptive delay (delayPercentile) only');
    }
  }
  if (maxDelayMs < minDelayMs) throw new InvalidConfigError(join(path, 'maxDelayMs'), `expected ≥ minDelayMs (${minDelayMs}), got ${maxDelayMs}`);
  let statuses = [502, 503, 504];
  if (o.nonFatalStatuses !== undefined) {
    const p = join(path, 'nonFatalStatuses');
    if (!Array.isArray(o.nonFatalStatuses)) throw new InvalidConfigError(p, `expected a list of HTTP statuses, got ${describe(o.nonFatalStatuses)}`);
    statuses = o.nonFatalStatuses.map((c, i) => {
      if (typeof c !== 'number' || !Number.isInteger(c) || c < 200 || c > 599) throw new InvalidConfigError(join(p, i), `expected a status from 200 to 599, got ${describe(c)}`);
      return c;
    });
  }
  return Object.freeze({
    delayMs: fixed ?? null,
    delayPercentile: adaptive ? optNumber(o, 'delayPercentile', path, 95, { min: 50, max: 99.9 }) : null,
    minDelayMs,
    maxDelayMs,
    hedgeOnPerTryTimeout: onPerTry,
    maxAttempts: optNumber(o, 'maxAttempts', path, 2, { integer: true, min: 2, max: 5 }),
    nonFatalStatuses: new Set(statuses),
    budget: parseBudgetConfig(o.budget, join(path, 'budget'), HEDGE_BUDGET_DEFAULTS),
    allowNonIdempotent: o.allowNonIdempotent === true,
  });
}

/**
 * `hedgeOnPerTryTimeout` needs a per-try timeout from the retry policy that applies: fail at
 * `createMesh` rather than never hedge. `perTryTimeoutMs` is that policy's (0 or none: off).
 */
export function checkHedgeOnPerTryTimeout(hedge: ParsedHedge | null | undefined, perTryTimeoutMs: number, path: string): void {
  if (hedge?.hedgeOnPerTryTimeout && perTryTimeoutMs <= 0) {
    throw new InvalidConfigError(join(path, 'hedgeOnPerTryTimeout'), 'needs a per-try timeout: set retry.perTryTimeoutMs (or give delayMs)');
  }
}
