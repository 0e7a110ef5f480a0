/**
 * Small validators for configuration objects. Each names the field's full dotted path, what was
 * expected and what was found, and throws {@link InvalidConfigError}. Used once, at createMesh, by
 * the mesh schema and by every built-in balancer and discovery source for its own options.
 */
import { closest, distance } from 'fastest-levenshtein';
import { describe } from '../core/endpoint-spec.js';
import { InvalidConfigError, messageOf } from '../core/errors.js';

export type Raw = Record<string, unknown>;

/**
 * Run code of the user's given in the config (a registered parser or factory) for the field at
 * `path`: an InvalidConfigError it throws passes through; anything else becomes one, naming
 * `what` threw, with the original as `cause` — createMesh throws nothing but InvalidConfigError.
 */
export function userCode<T>(path: string, what: string, run: () => T): T {
  try {
    return run();
  } catch (err) {
    if (err instanceof InvalidConfigError) throw err;
    throw new InvalidConfigError(path, `${what} threw: ${messageOf(err)}`, { cause: err });
  }
}

/** `value` must be a plain object. */
export function expectObject(value: unknown, path: string): Raw {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidConfigError(path, `expected an object, got ${describe(value)}`);
  }
  return value as Raw;
}

/**
 * `value` must be an array with no hole (`[, url]` has one at index 0): a hole is reported at its
 * index, so that no parser meets an element that is not there. `expected` says what the list
 * holds, for the error when `value` is not an array ("a list of routes").
 */
export function expectList(value: unknown, path: string, expected: string): readonly unknown[] {
  if (!Array.isArray(value)) throw new InvalidConfigError(path, `expected ${expected}, got ${describe(value)}`);
  for (let i = 0; i < value.length; i++) {
    if (!(i in value)) throw new InvalidConfigError(join(path, i), 'a hole in the list (nothing between two commas): give a value or remove the comma');
  }
  return value;
}

/**
 * Every key of `raw` must be in `allowed` (or in `deprecated`: old names still accepted, never
 * suggested). An unknown key's error suggests the nearest allowed name when one is close.
 */
export function rejectUnknown(raw: Raw, allowed: readonly string[], path: string, deprecated: readonly string[] = []): void {
  for (const k of Object.keys(raw)) {
    if (!allowed.includes(k) && !deprecated.includes(k)) {
      throw new InvalidConfigError(join(path, k), `unknown field${didYouMean(k, allowed)}${allowed.length ? ` (expected one of: ${allowed.join(', ')})` : ' (this takes no options)'}`);
    }
  }
}

/** ` — did you mean "x"?` when one of `names` is within a third of `word`'s length (at least 2 edits), else ''. */
export function didYouMean(word: string, names: readonly string[]): string {
  if (names.length === 0) return '';
  const best = closest(word, names as string[]);
  return distance(word.toLowerCase(), best.toLowerCase()) <= Math.max(2, Math.floor(word.length / 3)) ? ` — did you mean "${best}"?` : '';
}

export function join(path: string, key: string | number): string {
  return typeof key === 'number' ? `${path}[${key}]` : path ? `${path}.${key}` : key;
}

interface NumberRule {
  min?: number;
  max?: number;
  integer?: boolean;
  /** Exclusive lower bound. */
  above?: number;
}

/** A number within the rule's range, or `fallback` when absent. */
export function optNumber(raw: Raw, key: string, path: string, fallback: number, rule: NumberRule = {}): number {
  const v = raw[key];
  if (v === undefined) return fallback;
  return checkNumber(v, join(path, key), rule);
}

/** A number within the rule's range, or undefined when absent. */
export function maybeNumber(raw: Raw, key: string, path: string, rule: NumberRule = {}): number | undefined {
  const v = raw[key];
  return v === undefined ? undefined : checkNumber(v, join(path, key), rule);
}

export function checkNumber(v: unknown, path: string, rule: NumberRule): number {
  const kind = rule.integer ? 'an integer' : 'a number';
  if (typeof v !== 'number' || Number.isNaN(v) || !Number.isFinite(v) || (rule.integer && !Number.isInteger(v))) {
    throw new InvalidConfigError(path, `expected ${kind}${range(rule)}, got ${describe(v)}`);
  }
  if ((rule.min !== undefined && v < rule.min) || (rule.max !== undefined && v > rule.max) || (rule.above !== undefined && v <= rule.above)) {
    throw new InvalidConfigError(path, `expected ${kind}${range(rule)}, got ${v}`);
  }
  return v;
}

function range(rule: NumberRule): string {
  const lo = rule.above !== undefined ? `> ${rule.above}` : rule.min !== undefined ? `≥ ${rule.min}` : '';
  const hi = rule.max !== undefined ? `≤ ${rule.max}` : '';
  return lo && hi ? ` ${lo} and ${hi}` : lo || hi ? ` ${lo || hi}` : '';
}

export function optString(raw: Raw, key: string, path: string): string | undefined {
  const v = raw[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '') throw new InvalidConfigError(join(path, key), `expected a non-empty string, got ${describe(v)}`);
  return v;
}

export function optBoolean(raw: Raw, key: string, path: string, fallback: boolean): boolean {
  const v = raw[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') throw new InvalidConfigError(join(path, key), `expected true or false, got ${describe(v)}`);
  return v;
}

export function optEnum<T extends string>(raw: Raw, key: string, path: string, values: readonly T[], fallback: T): T {
  const v = raw[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'string' || !values.includes(v as T)) {
    throw new InvalidConfigError(join(path, key), `expected one of ${values.map((x) => JSON.stringify(x)).join(', ')}, got ${describe(v)}`);
  }
  return v as T;
}
