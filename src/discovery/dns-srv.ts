/**
 * `dns-srv` discovery: the SRV records of a name (RFC 2782) — each target resolved to its A/AAAA
 * addresses, on the record's port, weighted by the record's weight (0 counts as 1: "a very small
 * chance"), in priority groups: the lowest SRV priority is group 0, the next group 1, and so on, so
 * the lowest group serves and the next takes over as it loses endpoints. A single record with
 * target "." means the service is decidedly unavailable (an empty set). Targets that do not
 * resolve are reported and skipped; the rest are published. Node returns no TTL for SRV records,
 * so the set is refreshed every `refresh` ms (default 30 s). Failures as for `dns`.
 */
import { InvalidConfigError } from '../core/errors.js';
import { parseEndpointSpec, type EndpointSpec } from '../core/endpoint-spec.js';
import { expectObject, join, optNumber, optString, rejectUnknown } from '../config/check.js';
import type { DiscoveryContext, DiscoveryDefinition, DiscoverySource } from './discovery.js';
import { COMMON_KEYS, isNoData, makeResolver, NxPolicy, parseCommon, urlOf, type DnsCommonOptions } from './dns.js';
import { Refresher } from './refresh.js';

export interface DnsSrvOptions extends DnsCommonOptions {
  name: string;
  refreshMs: number;
}

class DnsSrvSource implements DiscoverySource {
  readonly #resolver;
  readonly #refresher: Refresher;
  readonly #nx: NxPolicy;

  constructor(
    private readonly o: DnsSrvOptions,
    private readonly ctx: DiscoveryContext,
  ) {
    this.#resolver = makeResolver(o);
    this.#nx = new NxPolicy(o, ctx);
    this.#refresher = new Refresher(() => this.#resolve(), { minMs: o.minRefreshMs, maxMs: o.maxRefreshMs, random: ctx.random });
    ctx.signal.addEventListener('abort', () => this.stop(), { once: true });
    this.#refresher.start();
  }

  async #addresses(target: string): Promise<string[]> {
    const [v4, v6] = await Promise.allSettled([this.#resolver.resolve4(target), this.#resolver.resolve6(target)]);
    return [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])];
  }

  async #resolve(): Promise<void> {
    let records;
    try {
      records = await this.#resolver.resolveSrv(this.o.name);
    } catch (err) {
      if (this.ctx.signal.aborted) return;
      const code = (err as NodeJS.ErrnoException).code;
      if (isNoData(code)) {
        this.#nx.none(new Error(`dns-srv discovery: ${this.o.name} has no SRV records (${code})`));
        this.#refresher.ok(this.o.refreshMs);
      } else {
        this.ctx.error(new Error(`dns-srv discovery: resolving ${this.o.name} failed (${code ?? (err as Error).message}); keeping the last good endpoints`));
        this.#refresher.failed();
      }
      return;
    }
    if (this.ctx.signal.aborted) return;
    if (records.length === 1 && (records[0]!.name === '.' || records[0]!.name === '')) {
      this.#nx.good();
      this.ctx.update([]);
      this.#refresher.ok(this.o.refreshMs);
      return;
    }
    const priorities = [...new Set(records.map((r) => r.priority))].sort((a, b) => a - b);
    const resolved = await Promise.all(records.map(async (r) => ({ r, addresses: await this.#addresses(r.name) })));
    if (this.ctx.signal.aborted) return;
    const specs: EndpointSpec[] = [];
    const seen = new Set<string>();
    for (const { r, addresses } of resolved) {
      if (addresses.length === 0) {
        this.ctx.error(new Error(`dns-srv discovery: SRV target ${r.name} of ${this.o.name} does not resolve; skipped`));
        continue;
      }
      for (const address of addresses) {
        const url = urlOf(this.o.protocol, address, r.port);
        if (seen.has(url)) continue;
        seen.add(url);
        specs.push(
          parseEndpointSpec(
            { url, weight: Math.max(1, Math.min(1_000_000, r.weight)), priority: Math.min(128, priorities.indexOf(r.priority)), hashKey: `${r.name}:${r.port}` },
            `dns-srv ${this.o.name}`,
          ),
        );
      }
    }
    if (specs.length === 0) {
      this.ctx.error(new Error(`dns-srv discovery: no SRV target of ${this.o.name} resolves; keeping the last good endpoints`));
      this.#refresher.failed();
      return;
    }
    this.#nx.good();
    this.ctx.update(specs);
    this.#refresher.ok(this.o.refreshMs);
  }

  stop(): void {
    this.#refresher.stop();
    this.#resolver.cancel();
  }
}

export const dnsSrvDiscovery: DiscoveryDefinition<DnsSrvOptions> = {
  create: (options, ctx) => new DnsSrvSource(options, ctx),
  parseOptions(raw, path) {
    const o = expectObject(raw, path);
    rejectUnknown(o, ['name', 'refresh', ...COMMON_KEYS], path);
    const name = optString(o, 'name', path);
    if (!name) throw new InvalidConfigError(join(path, 'name'), 'required: the SRV name, e.g. _http._tcp.orders.shop.svc.cluster.local');
    const common = parseCommon(o, path);
    return { name, refreshMs: optNumber(o, 'refresh', path, 30_000, { min: common.minRefreshMs, max: common.maxRefreshMs }), ...common };
  },
};
