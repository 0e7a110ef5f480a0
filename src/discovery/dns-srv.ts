/**
 * `dns-srv` discovery: the SRV records of a name (RFC 2782), each target resolved to its A/AAAA
 * addresses, one endpoint per address on the record's port.
 *
 * - Weight: the record's weight, on each address of its target. Weight 0 ("a very small chance",
 *   RFC 2782) becomes 1, the smallest weight an endpoint can have, so such a target gets the same
 *   share as a weight-1 one rather than almost none.
 * - Priority: SRV priorities are ranked into endpoint priority groups — the lowest SRV priority is
 *   group 0, the next group 1, …, capped at 128 — so the lowest group serves and the next takes
 *   over when it has no available endpoint (RFC 2782 "MUST try the lowest priority it can reach").
 *   An address listed under two priorities keeps the lower; under one priority twice, the
 *   weights add up.
 * - A lone record with target "." means the service is decidedly unavailable: an empty set.
 * - A target that does not resolve (NXDOMAIN/NODATA) is skipped and reported with `ctx.error`;
 *   the others are published. A target whose lookup fails (SERVFAIL, timeout) keeps its last
 *   good addresses. When no target resolves at all, the NXDOMAIN policy of `dns` applies.
 * - A record with port 0 is skipped and reported (nothing listens there); when every record has
 *   port 0 the answer counts as resolver trouble and the last good set stays.
 * - At most 256 distinct targets are resolved per refresh ({@link MAX_TARGETS_PER_REFRESH}).
 * - Node returns no TTL for SRV records, so the set is asked for every `refreshMs` (default
 *   30 s). Failures of the SRV query itself are handled as for `dns` (dns.ts); the life of the
 *   source (refresh, back-off, stop) is polling.ts's.
 */
import type { SrvRecord } from 'node:dns';
import type { Resolver } from 'node:dns/promises';
import pMap from 'p-map';
import type { EndpointSpec } from '../core/endpoint-spec.js';
import { expectObject, rejectUnknown } from '../config/check.js';
import type { DiscoveryContext, DiscoveryDefinition } from './discovery.js';
import {
  COMMON_DEPRECATED,
  COMMON_KEYS,
  dnsBackoff,
  dnsErrorCode,
  EMPTY_ANSWER,
  endpointFor,
  isNoData,
  makeResolver,
  parseCommon,
  parseDnsName,
  resolveHost,
  urlOf,
  type Address,
  type DnsCommonConfig,
  type DnsCommonOptions,
} from './dns-common.js';
import { DnsPublisher } from './dns-publisher.js';
import { optDurationMs, type Duration } from '../config/duration.js';
import { PollingSource, RetrySoon } from './polling.js';

/** `{ type: 'dns-srv', name, … }` as written in the config. */
export interface DnsSrvDiscoveryConfig extends DnsCommonConfig {
  type: 'dns-srv';
  /** The SRV name, e.g. `_http._tcp.orders.shop.svc.cluster.local`. */
  name: string;
  /** Interval between refreshes, within [minRefreshMs, maxRefreshMs]. @default 30000 (clamped into that range) */
  refreshMs?: Duration;
  /** @deprecated use `refreshMs` (same unit: ms) */
  refresh?: number;
}

/** `dns-srv` options, parsed. */
export interface DnsSrvOptions extends DnsCommonOptions {
  readonly name: string;
  readonly refreshMs: number;
}

/** Highest endpoint priority group (endpoint-spec.ts). */
const MAX_PRIORITY = 128;
const MAX_WEIGHT = 1_000_000;
/** Target lookups in flight at once: a headless Service with hundreds of pods is not a burst of hundreds of queries. */
const TARGET_LOOKUPS_IN_FLIGHT = 32;
/**
 * Distinct targets resolved per refresh (each costs one query per family). Past the cap, the
 * targets of the lowest priorities and highest weights are resolved and the rest get no
 * endpoints this refresh (reported): 2,000 targets cost 512 queries with `family: 'both'`, not 4,000.
 */
export const MAX_TARGETS_PER_REFRESH = 256;
const isRoot = (target: string): boolean => target === '' || target === '.';

class DnsSrvSource {
  readonly #o: DnsSrvOptions;
  readonly #ctx: DiscoveryContext;
  readonly #resolver: Resolver;
  readonly #pub: DnsPublisher;
  readonly #what: string;
  /** Last good addresses of each current target (lower-case name). */
  #targets = new Map<string, Address[]>();

  constructor(o: DnsSrvOptions, ctx: DiscoveryContext) {
    this.#o = o;
    this.#ctx = ctx;
    this.#what = `dns-srv discovery: ${o.name}`;
    this.#resolver = makeResolver(o);
    this.#pub = new DnsPublisher(o, ctx, this.#what);
  }

  start(): PollingSource {
    return new PollingSource(this.#ctx, {
      what: this.#what,
      backoff: dnsBackoff(this.#o),
      refreshCapMs: this.#o.maxRefreshMs,
      refresh: (signal) => this.#refresh(signal),
      release: () => {
        this.#pub.stop();
        this.#resolver.cancel();
      },
    });
  }

  /** One round: the SRV query, then every target's addresses; resolves with the delay before the next. */
  async #refresh(signal: AbortSignal): Promise<number> {
    const o = this.#o;
    let records: SrvRecord[];
    try {
      records = await this.#resolver.resolveSrv(o.name);
    } catch (err) {
      if (signal.aborted) return 0;
      const code = dnsErrorCode(err);
      if (isNoData(code)) {
        this.#targets.clear();
        this.#pub.none(`has no SRV records (${code})`);
      } else {
        this.#pub.failed(code);
      }
      throw new RetrySoon();
    }
    if (signal.aborted) return 0;
    if (records.length === 1 && isRoot(records[0]!.name)) {
      this.#targets.clear();
      this.#pub.unavailable();
      return o.refreshMs;
    }
    if (records.length === 0) {
      this.#targets.clear();
      this.#pub.none(`has no SRV records (${EMPTY_ANSWER})`);
      throw new RetrySoon();
    }
    // "." is meaningful only alone (RFC 2782); among other records it is ignored. Port 0 cannot be
    // connected to: such records are skipped and reported.
    const portZero = records.filter((r) => !isRoot(r.name) && r.port === 0);
    const usable = records.filter((r) => !isRoot(r.name) && r.port !== 0);
    if (portZero.length > 0) {
      const what = `${portZero.length} SRV record(s) with port 0 skipped: ${list(portZero.map((r) => `${r.name}:0`))}`;
      if (usable.length === 0) {
        this.#pub.failed(`every SRV record has port 0 (${what})`);
        throw new RetrySoon();
      }
      this.#pub.partial(what);
    }
    // Lowest priority, then highest weight first: past the cap, what would take the traffic is kept.
    const ranked = [...usable].sort((a, b) => a.priority - b.priority || b.weight - a.weight);
    const all = [...new Set(ranked.map((r) => r.name.toLowerCase()))];
    const names = all.slice(0, MAX_TARGETS_PER_REFRESH);
    if (all.length > names.length) {
      this.#pub.partial(`${all.length} SRV targets, more than the ${MAX_TARGETS_PER_REFRESH} resolved per refresh: the ${all.length - names.length} of the highest priorities and lowest weights were not resolved and get no endpoints`);
    }
    const answers = await pMap(names, (n) => (signal.aborted ? null : resolveHost(this.#resolver, n, o.family, this.#targets.get(n) ?? [])), {
      concurrency: TARGET_LOOKUPS_IN_FLIGHT,
    });
    if (signal.aborted) return 0;

    const addresses = new Map<string, Address[]>();
    const unresolved: string[] = [];
    const failing: string[] = [];
    let skipped = 0;
    answers.forEach((a, i) => {
      const n = names[i]!;
      if (a === null) return;
      skipped += a.skipped;
      if (a.failure !== null) failing.push(`${n} (${a.failure})`);
      if (a.addresses.length > 0) addresses.set(n, a.addresses);
      else unresolved.push(`${n} (${a.failure ?? a.noData ?? 'no address'})`);
    });
    this.#targets = addresses;
    const problems = skipped > 0 ? [`${skipped} target record(s) of the wrong address family`] : [];
    const specs = this.#endpoints(usable, addresses, problems);
    this.#pub.skipped(problems);

    if (specs.length === 0) {
      if (failing.length > 0) this.#pub.failed(`no SRV target resolves: ${list(unresolved)}`);
      else this.#pub.none(`has no SRV target that resolves (${list(unresolved)})`);
      throw new RetrySoon();
    }
    if (unresolved.length > 0) this.#pub.partial(`${unresolved.length} of ${names.length} SRV targets do not resolve and were skipped: ${list(unresolved)}`);
    else if (failing.length > 0) this.#pub.partial(`resolving SRV targets failed, keeping their last good addresses: ${list(failing)}`);
    this.#pub.good(specs);
    if (failing.length > 0) throw new RetrySoon();
    return o.refreshMs;
  }

/** Endpoints from the records: weight 0 → 1, SRV priorities ranked into groups 0…128. */
  #endpoints(records: readonly SrvRecord[], addresses: ReadonlyMap<string, Address[]>, skipped: string[]): EndpointSpec[] {
    const ranks = [...new Set(records.map((r) => r.priority))].sort((a, b) => a - b);
    const merged = new Map<string, { address: string; port: number; weight: number; priority: number }>();
    for (const r of records) {
      const priority = Math.min(MAX_PRIORITY, ranks.indexOf(r.priority));
      const weight = Math.max(1, r.weight);
      for (const { address } of addresses.get(r.name.toLowerCase()) ?? []) {
        const key = urlOf(this.#o.protocol, address, r.port);
        const seen = merged.get(key);
        if (seen === undefined || priority < seen.priority) merged.set(key, { address, port: r.port, weight, priority });
        else if (priority === seen.priority) seen.weight = Math.min(MAX_WEIGHT, seen.weight + weight);
      }
    }
    const specs: EndpointSpec[] = [];
    for (const e of merged.values()) {
      const spec = endpointFor(this.#o.protocol, e.address, e.port, { weight: e.weight, priority: e.priority }, this.#what, skipped);
      if (spec) specs.push(spec);
    }
    return specs;
  }

}

/** At most five items, then "and N more". */
function list(items: readonly string[]): string {
  return items.length <= 5 ? items.join(', ') : `${items.slice(0, 5).join(', ')} and ${items.length - 5} more`;
}

export const dnsSrvDiscovery: DiscoveryDefinition<DnsSrvOptions> = {
  create: (options, ctx) => new DnsSrvSource(options, ctx).start(),
  parseOptions(raw, path) {
    const o = expectObject(raw, path);
    rejectUnknown(o, ['name', 'refreshMs', ...COMMON_KEYS], path, ['refresh', ...COMMON_DEPRECATED]);
    const name = parseDnsName(o, 'name', path, '_http._tcp.orders.shop.svc.cluster.local');
    const common = parseCommon(o, path);
    const fallback = Math.min(common.maxRefreshMs, Math.max(common.minRefreshMs, 30_000));
    const refreshMs = optDurationMs(o, 'refreshMs', path, fallback, { min: common.minRefreshMs, max: common.maxRefreshMs }, { key: 'refresh', unitMs: 1 });
    return Object.freeze({ name, refreshMs, ...common });
  },
};
