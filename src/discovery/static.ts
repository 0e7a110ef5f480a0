/**
 * `static` discovery: a fixed list of endpoints from the config, replaceable at run time with
 * `mesh.setEndpoints(service, list)` (or this source's own `set`). Each replacement is a full
 * snapshot: added endpoints take traffic at once, removed ones drain.
 */
import { parseEndpointSpec, type EndpointInput, type EndpointSpec } from '../core/endpoint-spec.js';
import { expectList, expectObject, join, rejectUnknown } from '../config/check.js';
import { InvalidConfigError } from '../core/errors.js';
import type { DiscoveryContext, DiscoveryDefinition, DiscoverySource } from './discovery.js';

/** `{ type: 'static', endpoints: [...] }` as written in the config. */
export interface StaticDiscoveryConfig {
  type: 'static';
  /** The endpoints: URLs (`'http://10.0.0.1:8080'`) or objects with `url`, `weight`, `zone`, `labels`, … */
  endpoints: readonly EndpointInput[];
}

/** `static` options, parsed. */
export interface StaticDiscoveryOptions {
  endpoints: readonly EndpointSpec[];
}

/** The running static source; `set` replaces the list. */
export class StaticSource implements DiscoverySource {
  readonly #ctx: DiscoveryContext;
  #stopped = false;

  constructor(endpoints: readonly EndpointSpec[], ctx: DiscoveryContext) {
    this.#ctx = ctx;
    ctx.update(endpoints);
  }

  /**
   * Replace the endpoint list.
   * @throws InvalidConfigError when an entry is malformed (nothing is changed then).
   */
  set(endpoints: readonly EndpointInput[]): void {
    const specs = parseEndpointList(endpoints, `setEndpoints(${JSON.stringify(this.#ctx.service)})`);
    if (!this.#stopped) this.#ctx.update(specs);
  }

  stop(): void {
    this.#stopped = true;
  }
}

/** Parse a list of endpoint inputs, rejecting duplicates; paths are `path[i]`. */
export function parseEndpointList(list: unknown, path: string): EndpointSpec[] {
  const seen = new Set<string>();
  return expectList(list, path, 'an array of endpoints').map((item, i) => {
    const spec = parseEndpointSpec(item, join(path, i));
    if (seen.has(spec.origin)) throw new InvalidConfigError(join(path, i), `duplicate endpoint ${spec.origin}`);
    seen.add(spec.origin);
    return spec;
  });
}

export const staticDiscovery: DiscoveryDefinition<StaticDiscoveryOptions> = {
  create: (options, ctx) => new StaticSource(options.endpoints, ctx),
  parseOptions(raw, path) {
    const o = expectObject(raw, path);
    rejectUnknown(o, ['endpoints'], path);
    return { endpoints: parseEndpointList(o.endpoints, join(path, 'endpoints')) };
  },
  toJSON: (options) => ({ endpoints: options.endpoints.map(specToInput) }),
  serviceAccounts: (options) => options.endpoints.length > 0 && options.endpoints.every((e) => e.serviceAccount !== undefined),
};

/** An endpoint as config again: its URL, and only what differs from the defaults. */
export function specToInput(s: EndpointSpec): EndpointInput {
  const plain = s.weight === 1 && Object.keys(s.labels).length === 0 && s.zone === undefined && s.region === undefined && s.hashKey === undefined && s.priority === 0 && s.serviceAccount === undefined;
  if (plain) return s.origin;
  return {
    url: s.origin,
    weight: s.weight,
    labels: { ...s.labels },
    ...(s.zone !== undefined ? { zone: s.zone } : {}),
    ...(s.region !== undefined ? { region: s.region } : {}),
    ...(s.hashKey !== undefined ? { hashKey: s.hashKey } : {}),
    priority: s.priority,
    ...(s.serviceAccount !== undefined ? { serviceAccount: s.serviceAccount } : {}),
  };
}
