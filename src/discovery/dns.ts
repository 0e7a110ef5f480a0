/**
 * `dns` discovery: the A and/or AAAA records of a host name, each an endpoint on `port`,
 * re-resolved when the shortest TTL runs out (clamped to [minRefresh, maxRefresh]).
 *
 * Failure policy (reference/kubernetes-dns.md §6.4): SERVFAIL, timeouts and refused answers keep the
 * last good set (reported to the service, retried with back-off). NXDOMAIN / NODATA — the name has
 * no records, e.g. a headless Service with no ready pod — publishes an empty set at once when
 * nothing was ever resolved; after a good answer it is kept for `keepOnNxdomainMs` (default 60 s)
 * and then dropped, unless `onNxdomain: 'drop'` drops it at once. Queries go to `servers` when
 * given (a cluster's own DNS, or a test server), else to the system's resolvers. Names are queried
 * as given: no search-list expansion, so use fully qualified names.
 */
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import { InvalidConfigError } from '../core/errors.js';
import { describe, parseEndpointSpec, type EndpointSpec } from '../core/endpoint-spec.js';
import { expectObject, join, optEnum, optNumber, optString, rejectUnknown, type Raw } from '../config/check.js';
import type { DiscoveryContext, DiscoveryDefinition, DiscoverySource } from './discovery.js';
import { Refresher } from './refresh.js';

export interface DnsCommonOptions {
  /** DNS servers, `host:port` or `[v6]:port`; default: the system's. */
  servers: string[] | undefined;
  protocol: 'http' | 'https';
  minRefreshMs: number;
  maxRefreshMs: number;
  timeoutMs: number;
  onNxdomain: 'keep' | 'drop';
  keepOnNxdomainMs: number;
}

export interface DnsOptions extends DnsCommonOptions {
  host: string;
  port: number;
  family: 4 | 6 | 'both';
}

export function parseCommon(o: Raw, path: string): DnsCommonOptions {
  let servers: string[] | undefined;
  if (o.servers !== undefined) {
    if (!Array.isArray(o.servers) || o.servers.length === 0) throw new InvalidConfigError(join(path, 'servers'), `expected a list of "host:port", got ${describe(o.servers)}`);
    servers = o.servers.map((s, i) => {
      if (typeof s !== 'string' || !/^(\[[0-9a-f:.]+\]|[0-9.]+)(:\d+)?$/i.test(s)) {
        throw new InvalidConfigError(join(join(path, 'servers'), i), `expected an IP address with an optional port, got ${describe(s)}`);
      }
      return s;
    });
  }
  const minRefreshMs = optNumber(o, 'minRefresh', path, 1_000, { min: 10, max: 86_400_000 });
  return {
    servers,
    protocol: optEnum(o, 'protocol', path, ['http', 'https'], 'http'),
    minRefreshMs,
    maxRefreshMs: optNumber(o, 'maxRefresh', path, Math.max(minRefreshMs, 300_000), { min: minRefreshMs, max: 86_400_000 }),
    timeoutMs: optNumber(o, 'timeout', path, 2_000, { min: 10, max: 60_000 }),
    onNxdomain: optEnum(o, 'onNxdomain', path, ['keep', 'drop'], 'keep'),
    keepOnNxdomainMs: optNumber(o, 'keepOnNxdomainMs', path, 60_000, { min: 0, max: 86_400_000 }),
  };
}

export const COMMON_KEYS = ['servers', 'protocol', 'minRefresh', 'maxRefresh', 'timeout', 'onNxdomain', 'keepOnNxdomainMs'];

export function makeResolver(o: DnsCommonOptions): Resolver {
  const r = new Resolver({ timeout: o.timeoutMs, tries: 2 });
  if (o.servers) r.setServers(o.servers);
  return r;
}

export const isNoData = (code: string | undefined): boolean => code === 'ENOTFOUND' || code === 'ENODATA';

/** Endpoint URL for an address (IPv6 in brackets). */
export function urlOf(protocol: string, address: string, port: number): string {
  return `${protocol}://${isIP(address) === 6 ? `[${address}]` : address}:${port}`;
}

/** Shared NXDOMAIN policy: what to do when the name has no records. */
export class NxPolicy {
  #goodOnce = false;
  #since: number | null = null;
  constructor(
    private readonly o: DnsCommonOptions,
    private readonly ctx: DiscoveryContext,
  ) {}
  good(): void {
    this.#goodOnce = true;
    this.#since = null;
  }
  /** The name has no records now. */
  none(err: Error): void {
    const now = this.ctx.now();
    this.#since ??= now;
    if (!this.#goodOnce || this.o.onNxdomain === 'drop' || now - this.#since >= this.o.keepOnNxdomainMs) {
      this.ctx.update([]);
      return;
    }
    this.ctx.error(err);
  }
}

class DnsSource implements DiscoverySource {
  readonly #resolver: Resolver;
  readonly #refresher: Refresher;
  readonly #nx: NxPolicy;

  constructor(
    private readonly o: DnsOptions,
    private readonly ctx: DiscoveryContext,
  ) {
    this.#resolver = makeResolver(o);
    this.#nx = new NxPolicy(o, ctx);
    this.#refresher = new Refresher(() => this.#resolve(), { minMs: o.minRefreshMs, maxMs: o.maxRefreshMs, random: ctx.random });
    ctx.signal.addEventListener('abort', () => this.stop(), { once: true });
    this.#refresher.start();
  }

  async #query(family: 4 | 6): Promise<{ address: string; ttl: number }[] | NodeJS.ErrnoException> {
    try {
      return family === 4 ? await this.#resolver.resolve4(this.o.host, { ttl: true }) : await this.#resolver.resolve6(this.o.host, { ttl: true });
    } catch (err) {
      return err as NodeJS.ErrnoException;
    }
  }

  async #resolve(): Promise<void> {
    const families: (4 | 6)[] = this.o.family === 'both' ? [4, 6] : [this.o.family];
    const answers = await Promise.all(families.map((f) => this.#query(f)));
    if (this.ctx.signal.aborted) return;
    const records = answers.filter((a): a is { address: string; ttl: number }[] => Array.isArray(a)).flat();
    const errors = answers.filter((a): a is NodeJS.ErrnoException => !Array.isArray(a));
    if (records.length > 0) {
      const specs: EndpointSpec[] = [];
      for (const r of records) {
        try {
          specs.push(parseEndpointSpec(urlOf(this.o.protocol, r.address, this.o.port), `dns ${this.o.host}`));
        } catch (err) {
          this.ctx.error(new Error(`dns discovery: skipped a malformed record for ${this.o.host}: ${(err as Error).message}`));
        }
      }
      this.#nx.good();
      this.ctx.update(specs);
      this.#refresher.ok(Math.min(...records.map((r) => r.ttl)) * 1000);
      return;
    }
    const hard = errors.find((e) => !isNoData(e.code));
    if (hard) {
      this.ctx.error(new Error(`dns discovery: resolving ${this.o.host} failed (${hard.code ?? hard.message}); keeping the last good endpoints`));
      this.#refresher.failed();
      return;
    }
    this.#nx.none(new Error(`dns discovery: ${this.o.host} has no ${this.o.family === 'both' ? 'A or AAAA' : this.o.family === 4 ? 'A' : 'AAAA'} records (${errors[0]?.code ?? 'no data'})`));
    this.#refresher.ok(this.o.minRefreshMs);
  }

  stop(): void {
    this.#refresher.stop();
    this.#resolver.cancel();
  }
}

export const dnsDiscovery: DiscoveryDefinition<DnsOptions> = {
  create: (options, ctx) => new DnsSource(options, ctx),
  parseOptions(raw, path) {
    const o = expectObject(raw, path);
    rejectUnknown(o, ['host', 'port', 'family', ...COMMON_KEYS], path);
    const host = optString(o, 'host', path);
    if (!host) throw new InvalidConfigError(join(path, 'host'), 'required: the host name to resolve');
    if (o.port === undefined) throw new InvalidConfigError(join(path, 'port'), 'required: the port endpoints listen on');
    const family = o.family === undefined ? 'both' : o.family;
    if (family !== 4 && family !== 6 && family !== 'both') throw new InvalidConfigError(join(path, 'family'), `expected 4, 6 or "both", got ${describe(family)}`);
    return { host, port: optNumber(o, 'port', path, 0, { integer: true, min: 1, max: 65535 }), family, ...parseCommon(o, path) };
  },
};
