/**
 * A registry of named definitions — balancers by name, discovery sources by type. A mesh works on
 * a copy of the module-level registry, extended with its own entries. Names are kebab-case and
 * registered once: a taken name throws (grpc-js silently overwrites; we don't).
 */
import { describe } from './endpoint-spec.js';
import { InvalidConfigError } from './errors.js';

/** A definition is an object with a `create` function; a bare function is shorthand for one. */
type Definition = { create: (...args: any[]) => unknown };

export class Registry<D extends Definition> {
  readonly #entries = new Map<string, D>();
  readonly #call: string;
  readonly #key: string;

  /**
   * @param call the public function name for error paths, e.g. `registerBalancer`
   * @param key what the name is called there, e.g. `name` or `type`
   */
  constructor(call: string, key: string, parent?: Registry<D>) {
    this.#call = call;
    this.#key = key;
    if (parent) for (const [k, v] of parent.#entries) this.#entries.set(k, v);
  }

  /**
   * @param at the config field of this entry (`balancers.my-lb`), to name in errors; the
   *   module-level calls leave it out and errors name `registerBalancer.name` / `.factory`
   * @throws InvalidConfigError when the name is malformed or taken, the definition has no
   *   `create`, or its `parseOptions` / `toJSON` is given but not a function
   */
  register(name: string, factory: D['create'] | D, at?: string): void {
    const namePath = at ?? `${this.#call}.${this.#key}`;
    const defPath = at ?? `${this.#call}.factory`;
    if (!/^[a-z][a-z0-9-]*$/.test(name)) {
      throw new InvalidConfigError(namePath, `expected a kebab-case name, got ${JSON.stringify(name)}`);
    }
    if (this.#entries.has(name)) {
      throw new InvalidConfigError(namePath, `"${name}" is already registered`);
    }
    const def = (typeof factory === 'function' ? { create: factory } : factory) as D;
    if (typeof def !== 'object' || def === null || typeof def.create !== 'function') {
      throw new InvalidConfigError(defPath, `expected a function or an object with a create function, got ${describe(factory)}`);
    }
    for (const k of ['parseOptions', 'toJSON'] as const) {
      const f = (def as Record<string, unknown>)[k];
      if (f !== undefined && typeof f !== 'function') throw new InvalidConfigError(`${defPath}.${k}`, `expected a function, got ${describe(f)}`);
    }
    this.#entries.set(name, def);
  }

  get(name: string): D | undefined {
    return this.#entries.get(name);
  }

  has(name: string): boolean {
    return this.#entries.has(name);
  }

  names(): string[] {
    return [...this.#entries.keys()];
  }
}
