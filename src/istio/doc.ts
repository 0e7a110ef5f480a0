/**
 * One Istio document being read: typed accessors that report what they do not take, by path.
 *
 * Documents come from yaml.ts as objects without a prototype; handler tables and the objects
 * written out are looked up and filled by own property only, so a field, host, subset or header
 * named `constructor`, `hasOwnProperty` or `__proto__` is read and written like any other name.
 */
import { InvalidConfigError } from '../core/errors.js';
import { describe as describeValue } from '../core/endpoint-spec.js';
import { durationMs } from './duration.js';

/** The largest protobuf int32 and uint32. */
export const INT32_MAX = 2_147_483_647;
export const UINT32_MAX = 4_294_967_295;

export type Obj = Record<string, unknown>;
export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Set `o[k]` as an own, enumerable property — for any `k`, `__proto__` included. */
export function put<T>(o: Record<string, T>, k: string, v: T): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/** Walks one document, reporting what it does not take. */
export class Doc {
  /** Reports already made, so that a path read twice (once per host) is reported once. */
  readonly #seen = new Set<string>();

  /**
   * @param label how reports name the document (`VirtualService reviews`)
   * @param namespace its `metadata.namespace`, in which Istio reads its short host names
   */
  constructor(
    readonly label: string,
    readonly out: { path: string; message: string }[],
    readonly namespace: string | undefined = undefined,
  ) {}

  unsupported(path: string, message = 'not supported by meshlet'): void {
    const key = `${path}\n${message}`;
    if (this.#seen.has(key)) return;
    this.#seen.add(key);
    this.out.push({ path: `${this.label}: ${path}`, message });
  }

  bad(path: string, problem: string): never {
    throw new InvalidConfigError(`${this.label}: ${path}`, problem);
  }

  obj(v: unknown, path: string): Obj {
    if (!isObj(v)) this.bad(path, `expected an object, got ${describeValue(v)}`);
    return v;
  }

  list(v: unknown, path: string): unknown[] {
    if (!Array.isArray(v)) this.bad(path, `expected a list, got ${describeValue(v)}`);
    return v;
  }

  /** A string; a number or boolean is taken as its text (YAML `exact: 200`). */
  str(v: unknown, path: string): string {
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    if (typeof v !== 'string') this.bad(path, `expected a string, got ${describeValue(v)}`);
    return v;
  }

  /** A number; a string of digits is taken as its value (protobuf JSON writes 64-bit integers so). */
  num(v: unknown, path: string): number {
    if (typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v)) return Number(v);
    if (typeof v !== 'number') this.bad(path, `expected a number, got ${describeValue(v)}`);
    return v;
  }

  /** An object's entries checked by `value`, copied into a plain object. */
  record<T>(v: unknown, path: string, value: (x: unknown, p: string) => T): Record<string, T> {
    const out: Record<string, T> = {};
    for (const [k, x] of Object.entries(this.obj(v, path))) put(out, k, value(x, `${path}.${k}`));
    return out;
  }

  /** Run `handlers[key]` for each key of `o`; report the others. */
  fields(o: Obj, path: string, handlers: Record<string, (v: unknown, p: string) => void>): void {
    for (const [k, v] of Object.entries(o)) {
      const p = path ? `${path}.${k}` : k;
      if (Object.hasOwn(handlers, k)) handlers[k]!(v, p);
      else this.unsupported(p);
    }
  }

  /** A protobuf wrapper's value: `{ value: x }` (other keys reported) or `x` itself. */
  wrapped(v: unknown, path: string): unknown {
    if (!isObj(v)) return v;
    let value: unknown;
    this.fields(v, path, { value: (x) => (value = x) });
    return value;
  }

  /** A boolean, or a protobuf BoolValue `{ value }`. */
  bool(v: unknown, path: string): boolean {
    const value = this.wrapped(v, path);
    if (typeof value !== 'boolean') this.bad(path, `expected true or false, got ${describeValue(value)}`);
    return value;
  }

  /**
   * A whole number from 0 up to `max`: an int32 field by default (a route's weight, retry
   * attempts), nothing past 2147483647; a uint32 or uint64 field passes its own bound, and so do
   * the connection-pool sizes, whose documented default is Envoy's 2^32 - 1 (users write it out).
   * Without a bound `weight: 1e308` added up to Infinity and split as NaN.
   */
  count(v: unknown, path: string, max: number = INT32_MAX): number {
    const n = this.num(v, path);
    if (!Number.isInteger(n) || n < 0 || n > max) this.bad(path, `expected a whole number from 0 to ${max}, got ${describeValue(n)}`);
    return n;
  }

  /** A count in a protobuf UInt32Value: `{ value: n }` or `n`. */
  wrappedCount(v: unknown, path: string): number {
    return this.count(this.wrapped(v, path), path, UINT32_MAX);
  }

  /**
   * Run one of meshlet's own validators (`check`, which throws InvalidConfigError) on a value read
   * at `path`: its refusal is told at the document and field, not at the `services.…` path
   * createMesh would have named later.
   */
  checked<T>(path: string, check: () => T): T {
    try {
      return check();
    } catch (err) {
      if (!(err instanceof InvalidConfigError)) throw err;
      return this.bad(path, err.message.replace(/^invalid config at [^:]*: /, ''));
    }
  }

  /** A handler that reports a field meshlet knows and does not apply, saying why. */
  reportAs(message: string): (v: unknown, p: string) => void {
    return (_v, p) => this.unsupported(p, message);
  }

  duration(v: unknown, path: string): number {
    const ms = durationMs(v);
    if (ms === undefined) this.bad(path, `expected a duration such as "10s" or "250ms", got ${describeValue(v)}`);
    return ms;
  }

  percent(v: unknown, path: string): number {
    const value = this.wrapped(v, path);
    if (typeof value !== 'number' || !(value >= 0 && value <= 100)) this.bad(path, `expected a percentage from 0 to 100, got ${describeValue(value)}`);
    return value;
  }
}
