/** One Istio document being read: typed accessors that report what they do not take, by path. */
import { InvalidConfigError } from '../core/errors.js';
import { describe as describeValue } from '../core/endpoint-spec.js';
import { durationMs } from './duration.js';

export type Obj = Record<string, unknown>;
export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Walks one document, reporting what it does not take. */
export class Doc {
  constructor(
    readonly label: string,
    readonly out: { path: string; message: string }[],
  ) {}

  unsupported(path: string, message = 'not supported by meshlet'): void {
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

  /** Run `handlers[key]` for each key of `o`; report the others. */
  fields(o: Obj, path: string, handlers: Record<string, (v: unknown, p: string) => void>): void {
    for (const [k, v] of Object.entries(o)) {
      const p = path ? `${path}.${k}` : k;
      const h = handlers[k];
      if (h) h(v, p);
      else this.unsupported(p);
    }
  }

  duration(v: unknown, path: string): number {
    const ms = durationMs(v);
    if (ms === undefined) this.bad(path, `expected a duration such as "10s" or "250ms", got ${describeValue(v)}`);
    return ms;
  }

  percent(v: unknown, path: string): number {
    const value = isObj(v) ? v.value : v;
    if (typeof value !== 'number' || value < 0 || value > 100) this.bad(path, `expected a percentage from 0 to 100, got ${describeValue(value)}`);
    return value;
  }
}

export function serviceOf(host: unknown, doc: Doc, path: string): { name: string; namespace: string | undefined; extraHost: string | undefined } {
  if (typeof host !== 'string' || host === '' || host.includes('*')) doc.bad(path, `expected a service host (no wildcards), got ${describeValue(host)}`);
  const parts = host.toLowerCase().split('.');
  const name = parts[0]!;
  const k8s = parts.length === 1 || parts.length === 2 || (parts[2] === 'svc' && (parts.length === 3 || parts.slice(3).join('.') === 'cluster.local'));
  return { name, namespace: parts[1], extraHost: k8s ? undefined : host.toLowerCase() };
}
