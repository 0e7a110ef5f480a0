/**
 * `dns` discovery: the A and/or AAAA records of a host name, each an endpoint on `port`, asked
 * again when the shortest TTL runs out (clamped to [minRefreshMs, maxRefreshMs]).
 *
 * Failure policy (reference/kubernetes-dns.md §6.4, DESIGN.md "discovery failures keep the last
 * good endpoints"):
 * - SERVFAIL, REFUSED, a timeout, a refused connection, a malformed reply: reported with
 *   `ctx.error` (the service keeps its last good set, counts and logs it), asked again with
 *   back-off (backoff.ts). With `family: 'both'`, a family that fails keeps its last good
 *   addresses while the other family's fresh answer is published.
 * - NXDOMAIN / NODATA (the name has no records, e.g. a headless Service with no ready pod): the
 *   publisher's policy (dns-publisher.ts); Node exposes no negative TTL (the SOA), so the name is
 *   asked again with back-off.
 *
 * The life of the source (first refresh, next refresh, back-off, stop) is polling.ts's; what the
 * two DNS sources share is in dns-common.ts.
 */
import type { Resolver } from 'node:dns/promises';
import { InvalidConfigError } from '../core/errors.js';
import type { EndpointSpec } from '../core/endpoint-spec.js';
import { checkNumber, expectObject, join, rejectUnknown } from '../config/check.js';
import type { DiscoveryContext, DiscoveryDefinition } from './discovery.js';
import { COMMON_DEPRECATED, COMMON_KEYS, dnsBackoff, endpointFor, makeResolver, parseCommon, parseDnsName, resolveHost, type Address, type DnsCommonConfig, type DnsCommonOptions } from './dns-common.js';
import { DnsPublisher } from './dns-publisher.js';
import { PollingSource, RetrySoon } from './polling.js';

/** `{ type: 'dns', host, port, … }` as written in the config. */
export interface DnsDiscoveryConfig extends DnsCommonConfig {
  type: 'dns';
  /** Fully qualified name whose A/AAAA records are the endpoints (no search list is applied). */
  host: string;
  /** Port every endpoint listens on, 1–65535. */
  port: number;
}

/** `dns` options, parsed. */
export interface DnsOptions extends DnsCommonOptions {
  readonly host: string;
  readonly port: number;
}

/** Delay after a good answer whose shortest TTL is `ttlSeconds`, clamped to the refresh bounds. */
export function ttlDelay(ttlSeconds: number, minMs: number, maxMs: number): number {
  return Math.min(maxMs, Math.max(minMs, ttlSeconds * 1000));
}

function startDns(o: DnsOptions, ctx: DiscoveryContext): PollingSource {
  const what = `dns discovery: ${o.host}`;
  const resolver: Resolver = makeResolver(o);
  const pub = new DnsPublisher(o, ctx, what);
  /** Addresses of the last good answer, for a family whose query fails. */
  let current: Address[] = [];

  async function refresh(signal: AbortSignal): Promise<number> {
    const answer = await resolveHost(resolver, o.host, o.family, current);
    if (signal.aborted) return 0;
    if (answer.failure !== null) pub.failed(answer.failure);
    if (!answer.fresh) {
      if (answer.failure !== null) throw new RetrySoon();
      current = []; // gone: a later partial failure must not bring these back
      pub.none(`has no ${o.family === 'both' ? 'A or AAAA' : o.family === 4 ? 'A' : 'AAAA'} records (${answer.noData})`);
      throw new RetrySoon();
    }
    const specs: EndpointSpec[] = [];
    const skipped = answer.skipped > 0 ? [`${answer.skipped} record(s) of the wrong address family`] : [];
    for (const a of answer.addresses) {
      const spec = endpointFor(o.protocol, a.address, o.port, {}, what, skipped);
      if (spec) specs.push(spec);
    }
    pub.skipped(skipped);
    current = answer.addresses;
    pub.good(specs);
    if (answer.failure !== null) throw new RetrySoon();
    return ttlDelay(answer.ttl, o.minRefreshMs, o.maxRefreshMs);
  }

  return new PollingSource(ctx, {
    what,
    backoff: dnsBackoff(o),
    refreshCapMs: o.maxRefreshMs,
    refresh,
    release: () => {
      pub.stop();
      resolver.cancel();
    },
  });
}

export const dnsDiscovery: DiscoveryDefinition<DnsOptions> = {
  create: (options, ctx) => startDns(options, ctx),
  parseOptions(raw, path) {
    const o = expectObject(raw, path);
    rejectUnknown(o, ['host', 'port', ...COMMON_KEYS], path, COMMON_DEPRECATED);
    const host = parseDnsName(o, 'host', path, 'orders.shop.svc.cluster.local');
    if (o.port === undefined) throw new InvalidConfigError(join(path, 'port'), 'required: the port the endpoints listen on');
    const port = checkNumber(o.port, join(path, 'port'), { integer: true, min: 1, max: 65535 });
    return Object.freeze({ host, port, ...parseCommon(o, path) });
  },
};
