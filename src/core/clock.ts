/**
 * The random source and clock a mesh is given (`createMesh({ random, now })`), made safe to build
 * timers and picks on, and the clamp every computed delay goes through.
 *
 * A timer of NaN, a negative or an infinite delay fires after 1 ms in Node: one bad reading in a
 * back-off or a check interval becomes a busy loop. So an injected function's bad reading — NaN,
 * ±Infinity, out of range, not a number, or a call that throws — is replaced (and the logger
 * warned once per function), and each delay is clamped to its configured bounds besides.
 */
import { describe } from './endpoint-spec.js';
import { messageOf } from './errors.js';

/** The largest double below 1. */
const BELOW_ONE = 1 - 2 ** -53;

/**
 * `random` with every reading in [0, 1): below 0 becomes 0, 1 or more the largest double below
 * 1, NaN / not a number / a throw becomes 0.5.
 */
export function guardRandom(random: () => number, warn: (message: string) => void): () => number {
  let warned = false;
  const instead = (what: string, value: number): number => {
    if (!warned) {
      warned = true;
      warn(`random() ${what}, used ${value} instead; it must return a number in [0, 1) (warned once)`);
    }
    return value;
  };
  return () => {
    let v: unknown;
    try {
      v = random();
    } catch (err) {
      return instead(`threw (${messageOf(err)})`, 0.5);
    }
    if (typeof v === 'number' && v >= 0 && v < 1) return v;
    if (typeof v !== 'number' || Number.isNaN(v)) return instead(`returned ${describe(v)}`, 0.5);
    return instead(`returned ${v}`, v < 0 ? 0 : BELOW_ONE);
  };
}

/**
 * `now` as a finite clock that never goes back: a reading that is not a finite number (or a call
 * that throws) repeats the last good one (0 before any), and one below it is raised to it.
 */
export function guardClock(now: () => number, warn: (message: string) => void): () => number {
  let last: number | undefined;
  let warned = false;
  const instead = (what: string): number => {
    if (!warned) {
      warned = true;
      warn(`now() ${what}, used ${last ?? 0} instead; it must be a monotonic clock in ms (warned once)`);
    }
    return (last ??= 0);
  };
  return () => {
    let v: unknown;
    try {
      v = now();
    } catch (err) {
      return instead(`threw (${messageOf(err)})`);
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) return instead(`returned ${describe(v)}`);
    if (last !== undefined && v < last) return instead(`went back (${v} after ${last})`);
    return (last = v);
  };
}

/** `ms` within [min, max]; NaN becomes `max`, so a broken computation waits longest, never 1 ms. */
export function clampDelay(ms: number, min: number, max: number): number {
  return Number.isNaN(ms) ? max : Math.min(max, Math.max(min, ms));
}
