/**
 * Durations in config, one rule for every field: a duration is a number of milliseconds in a
 * field whose name ends in `Ms` (`timeoutMs: 2_000`), or an Istio-style duration string in that
 * same field (`'250ms'`, `'2s'`, `'1m'`, `'1h'`, `'1m30s'`, `'1.5s'`).
 *
 * Fields renamed to follow the rule (`timeout` → `timeoutMs`, `keepFor` → `keepForMs`,
 * `watchTimeoutSeconds` → `watchTimeoutMs`, …) still accept their old name and unit, with a
 * one-time `DeprecationWarning` whose code is `MESHLET_DEP_<OLD NAME IN CAPITALS>`; giving both
 * names is an error.
 */
import { describe } from '../core/endpoint-spec.js';
import { InvalidConfigError } from '../core/errors.js';
import { checkNumber, join, type Raw } from './check.js';

type DurationUnit = 'ms' | 's' | 'm' | 'h';
type DurationPart = `${number}${DurationUnit}`;

/**
 * A duration: milliseconds, or an Istio-style string such as `'250ms'`, `'2s'`, `'1m'`, and up to
 * three parts for the type checker (`'1m30s'`, `'1h30m'`, `'1h2m3s'`; the parser takes any number).
 */
export type Duration = number | DurationPart | `${DurationPart}${DurationPart}` | `${DurationPart}${DurationPart}${DurationPart}`;

const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1 };
const STRING = /^(?:\d+(?:\.\d+)?(?:ms|h|m|s))+$/;

/** Milliseconds of an Istio-style duration string, or undefined when it is not one. */
export function parseDurationString(text: string): number | undefined {
  const s = text.trim();
  if (!STRING.test(s)) return undefined;
  let total = 0;
  for (const [, n, unit] of s.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)) total += Number(n) * UNIT_MS[unit!]!;
  return total;
}

interface DurationRule {
  min?: number;
  max?: number;
  integer?: boolean;
}

/** A deprecated name of the field, and how many ms one of its units is (1 for ms, 1000 for seconds). */
export interface OldName {
  readonly key: string;
  readonly unitMs: number;
}

const warned = new Set<string>();

/** Emit the deprecation warning for `oldKey` once per process. */
function deprecated(oldKey: string, newKey: string, unit: string): void {
  const code = `MESHLET_DEP_${oldKey.toUpperCase()}`;
  if (warned.has(code)) return;
  warned.add(code);
  process.emitWarning(`meshlet: the option "${oldKey}" (${unit}) is deprecated; use "${newKey}" (ms, or a duration such as "30s")`, {
    type: 'DeprecationWarning',
    code,
  });
}

/** Check a duration value (ms number or string) at `path` against `rule`; returns ms. */
export function checkDuration(v: unknown, path: string, rule: DurationRule = {}): number {
  if (typeof v === 'string') {
    const ms = parseDurationString(v);
    if (ms === undefined) throw new InvalidConfigError(path, `expected a duration in ms or a string such as "250ms", "2s" or "1m", got ${describe(v)}`);
    return checkNumber(ms, path, rule);
  }
  return checkNumber(v, path, rule);
}

/**
 * The duration at `key` (which ends in `Ms`), or at its deprecated name, or `fallback` when
 * neither is given. Returns ms.
 */
export function optDurationMs<F extends number | undefined>(raw: Raw, key: string, path: string, fallback: F, rule: DurationRule = {}, old?: OldName): number | F {
  const has = (k: string): boolean => Object.hasOwn(raw, k) && raw[k] !== undefined;
  if (old && has(old.key)) {
    if (has(key)) throw new InvalidConfigError(join(path, old.key), `give either "${key}" or the deprecated "${old.key}", not both`);
    deprecated(old.key, key, old.unitMs === 1 ? 'ms' : old.unitMs === 1000 ? 'seconds' : `${old.unitMs} ms units`);
    const v = raw[old.key];
    const n = typeof v === 'number' ? v * old.unitMs : v;
    return checkDuration(n, join(path, old.key), rule);
  }
  if (!has(key)) return fallback;
  return checkDuration(raw[key], join(path, key), rule);
}
