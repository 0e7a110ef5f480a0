/**
 * `dns` discovery: the A and/or AAAA records of a host name, each an endpoint on `port`, asked
 * again when the shortest TTL runs out (clamped to [minRefresh, maxRefresh]).
 *
 * Failure policy (reference/kubernetes-dns.md §6.4, DESIGN.md "discovery failures keep the last
 * good endpoints"):
 * - SERVFAIL, REFUSED, a timeout, a refused connection, a malformed reply: reported with
 *   `ctx.error` (the service keeps its last good set, counts and logs it), asked again with
 *   back-off (refresh.ts). With `family: 'both'`, a family that fails keeps its last good
 *   addresses while the other family's fresh answer is published.
 * - NXDOMAIN / NODATA (the name has no records, e.g. a headless Service with no ready pod): before
 *   any good answer, an empty set is published at once so waiting requests fail fast with
 *   NO_HEALTHY_ENDPOINT. After a good answer, `onNxdomain: 'keep'` (default) keeps the last good
 *   set for `keepFor` ms (default 60 s) and then publishes an empty set; `'drop'` empties at once.
 *   Node exposes no negative TTL (the SOA), so the name is asked again with back-off.
 *
 * Queries go to `servers` when given (a cluster's DNS, a test server), else to the system's
 * resolvers, through node:dns `Resolver` (c-ares; no cache of its own). Names are queried as
 * given: no search list, so use fully qualified names. Identical snapshots are not pushed twice.
 *
 * This file also holds what `dns-srv` shares: the common options, one host's address lookup,
 * and the publisher that applies the NXDOMAIN policy.
 */
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import { InvalidConfigError } from '../core/errors.js';
import { describe, parseEndpointSpec, type EndpointSpec } from '../core/endpoint-spec.js';
import { checkNumber, expectObject, join, optEnum, optNumber, rejectUnknown, type Raw } from '../config/check.js';
import type { DiscoveryContext, DiscoveryDefinition, DiscoverySource } from './discovery.js';
import { Backoff, Poller, ttlDelay } from './refresh.js';

/** Options `dns` and `dns-srv` share. Durations in ms. */
export interface DnsCommonOptions {
  /** DNS servers as `ip`, `ip:port`, `[ipv6]:port`; default: the system's resolvers. */
  readonly servers: readonly string[] | undefined;
  /** Address families to ask for. @default 'both' */
  readonly family: 4 | 6 | 'both';
  /** Scheme of the endpoints. @default 'http' */
  readonly protocol: 'http' | 'https';
  /** Shortest interval between two refreshes; floor of TTLs and back-off. @default 1000 */
  readonly minRefresh: number;
  /** Longest interval between two refreshes; ceiling of TTLs. @default 300000 */
  readonly maxRefresh: number;
  /** How long c-ares waits for a reply to one try. @default 2000 */
  readonly timeout: number;
  /** Tries per server before a query fails (c-ares `tries`). @default 2 */
  readonly tries: number;
  /** After a good answer, what an NXDOMAIN/NODATA does. @default 'keep' */
  readonly onNxdomain: 'keep' | 'drop';
  /** With `onNxdomain: 'keep'`, how long the last good set outlives the name. @default 60000 */
  readonly keepFor: number;
}

/** Options of `{ type: 'dns', host, port, … }`. */
export interface DnsOptions extends DnsCommonOptions {
  /** Fully qualified name whose A/AAAA records are the endpoints. */
  readonly host: string;
  /** Port every endpoint listens on, 1–65535. */
  readonly port: number;
}

const DAY_MS = 86_400_000;
/** Option names `dns` and `dns-srv` share, for `rejectUnknown`. */
export const COMMON_KEYS = ['servers', 'family', 'protocol', 'minRefresh', 'maxRefresh', 'timeout', 'tries', 'onNxdomain', 'keepFor'];

/** Validate the shared options; every error names its field under `path`. */
export function parseCommon(o: Raw, path: string): DnsCommonOptions {
  const servers = o.servers === undefined ? undefined : parseServers(o.servers, join(path, 'servers'));
  const family = o.family ?? 'both';
  if (family !== 4 && family !== 6 && family !== 'both') {
    throw new InvalidConfigError(join(path, 'family'), `expected 4, 6 or "both", got ${describe(family)}`);
  }
  const minRefresh = optNumber(o, 'minRefresh', path, 1_000, { min: 10, max: DAY_MS });
  return {
    servers,
    family,
    protocol: optEnum(o, 'protocol', path, ['http', 'https'], 'http'),
    minRefresh,
    maxRefresh: optNumber(o, 'maxRefresh', path, Math.max(minRefresh, 300_000), { min: minRefresh, max: DAY_MS }),
    timeout: optNumber(o, 'timeout', path, 2_000, { integer: true, min: 10, max: 60_000 }),
    tries: optNumber(o, 'tries', path, 2, { integer: true, min: 1, max: 10 }),
    onNxdomain: optEnum(o, 'onNxdomain', path, ['keep', 'drop'], 'keep'),
    keepFor: optNumber(o, 'keepFor', path, 60_000, { min: 0, max: DAY_MS }),
  };
}

function parseServers(value: unknown, path: string): readonly string[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new InvalidConfigError(path, `expected a non-empty list of "ip:port" strings, got ${describe(value)}`);
  }
  const list = value.map((s, i) => {
    const at = join(path, i);
    const bad = (): InvalidConfigError => new InvalidConfigError(at, `expected an IP address with an optional port ("10.96.0.10:53", "[fd00::a]:53"), got ${describe(s)}`);
    if (typeof s !== 'string') throw bad();
    // "[v6]" or "[v6]:port"; a bare v6 address; "v4" or "v4:port".
    const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(s) ?? (isIP(s) === 6 ? [s, s] : /^([^:]+)(?::(\d+))?$/.exec(s));
    if (!m || isIP(m[1]!) !== (s.includes('[') || isIP(s) === 6 ? 6 : 4)) throw bad();
    if (m[2] !== undefined) checkNumber(Number(m[2]), at, { integer: true, min: 1, max: 65535 });
    return s;
  });
  try {
    new Resolver().setServers(list);
  } catch (err) {
    throw new InvalidConfigError(path, `node:dns rejects these servers: ${(err as Error).message}`);
  }
  return Object.freeze(list);
}

/** A DNS name as RFC 1035 allows it (underscores too, for SRV); not an IP address. */
export function parseDnsName(o: Raw, key: string, path: string, example: string): string {
  const v = o[key];
  const p = join(path, key);
  if (v === undefined) throw new InvalidConfigError(p, `required: the name to resolve, e.g. "${example}"`);
  if (typeof v !== 'string') throw new InvalidConfigError(p, `expected a DNS name, got ${describe(v)}`);
  if (isIP(v) !== 0) throw new InvalidConfigError(p, `expected a DNS name, got the address ${v} (use static discovery for fixed addresses)`);
  const label = '[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?';
  if (v.length > 254 || !new RegExp(`^${label}(?:\\.${label})*\\.?$`, 'i').test(v)) {
    throw new InvalidConfigError(p, `expected a DNS name (labels of letters, digits, "-" and "_", up to 63 each), got ${describe(v)}`);
  }
  return v;
}

/** A resolver of its own per source (so `cancel()` on stop touches no one else's queries). */
export function makeResolver(o: DnsCommonOptions): Resolver {
  const r = new Resolver({ timeout: o.timeout, tries: o.tries });
  if (o.servers) r.setServers(o.servers);
  return r;
}

/** NXDOMAIN (`ENOTFOUND`) or NOERROR without records (`ENODATA`): the name has nothing, authoritatively. */
export const isNoData = (code: string | undefined): boolean => code === 'ENOTFOUND' || code === 'ENODATA';

/** One resolved address and its family. */
export interface Address {
  readonly address: string;
  readonly family: 4 | 6;
}

/** One host's addresses over the configured families. */
export interface HostAnswer {
  /** Fresh addresses, plus the previous ones of a family whose query failed. */
  readonly addresses: Address[];
  /** Some family answered with records. */
  readonly fresh: boolean;
  /** Shortest TTL of the fresh records, in seconds (0 when none). */
  readonly ttl: number;
  /** Error code of the first family that failed other than NXDOMAIN/NODATA, or null. */
  readonly failure: string | null;
  /** Error code of an NXDOMAIN/NODATA answer, when no family had records. */
  readonly noData: string | null;
  /** Records dropped because their address is not of the asked family. */
  readonly skipped: number;
}

/**
 * Ask for `host`'s A and/or AAAA records (with TTLs). A family that fails other than with
 * NXDOMAIN/NODATA keeps its addresses from `previous`.
 */
export async function resolveHost(resolver: Resolver, host: string, family: 4 | 6 | 'both', previous: readonly Address[]): Promise<HostAnswer> {
  const families: (4 | 6)[] = family === 'both' ? [4, 6] : [family];
  const answers = await Promise.all(
    families.map(async (f) => {
      try {
        const records = f === 4 ? await resolver.resolve4(host, { ttl: true }) : await resolver.resolve6(host, { ttl: true });
        return { f, records, code: '' };
      } catch (err) {
        return { f, records: null, code: (err as NodeJS.ErrnoException).code ?? (err as Error).message };
      }
    }),
  );
  const addresses: Address[] = [];
  let fresh = false;
  let ttl = Infinity;
  let failure: string | null = null;
  let noData: string | null = null;
  let skipped = 0;
  const seen = new Set<string>();
  for (const a of answers) {
    if (a.records !== null) {
      for (const r of a.records) {
        if (isIP(r.address) !== a.f) {
          skipped++;
          continue;
        }
        fresh = true;
        ttl = Math.min(ttl, r.ttl);
        if (!seen.has(r.address)) addresses.push({ address: r.address, family: a.f });
        seen.add(r.address);
      }
    } else if (isNoData(a.code)) {
      noData ??= a.code;
    } else {
      failure ??= a.code;
      for (const p of previous) if (p.family === a.f && !seen.has(p.address)) addresses.push(p);
    }
  }
  return { addresses, fresh, ttl: fresh ? ttl : 0, failure, noData: fresh ? null : noData, skipped };
}

/** Endpoint URL for an address (IPv6 in brackets). */
export function urlOf(protocol: string, address: string, port: number): string {
  return `${protocol}://${isIP(address) === 6 ? `[${address}]` : address}:${port}`;
}

/**
 * What a DNS source has published, and the NXDOMAIN policy: pushes a snapshot only when it
 * differs from the last one; keeps the last good set for `keepFor` after the name goes away.
 */
export class DnsPublisher {
  readonly #o: DnsCommonOptions;
  readonly #ctx: DiscoveryContext;
  readonly #what: string;
  #lastKey: string | null = null;
  /** The published set came from a good, non-empty answer. */
  #holding = false;
  #dropTimer: NodeJS.Timeout | null = null;
  #stopped = false;

  constructor(o: DnsCommonOptions, ctx: DiscoveryContext, what: string) {
    this.#o = o;
    this.#ctx = ctx;
    this.#what = what;
  }

  /** A good answer with at least one endpoint. */
  good(specs: readonly EndpointSpec[]): void {
    this.#cancelDrop();
    this.#holding = true;
    this.#publish(specs);
  }

  /** The name has no records (NXDOMAIN, NODATA, no target resolves): apply `onNxdomain`. */
  none(reason: string): void {
    if (!this.#holding) return this.#publish([]);
    if (this.#o.onNxdomain === 'drop' || this.#o.keepFor === 0) return this.#drop(reason);
    if (this.#dropTimer === null) {
      this.#dropTimer = setTimeout(() => this.#drop(`${reason} for ${this.#o.keepFor} ms`), this.#o.keepFor);
      this.#dropTimer.unref();
    }
    this.#ctx.error(new Error(`${this.#what} ${reason}; keeping the last good endpoints for up to ${this.#o.keepFor} ms`));
  }

  /** The service is decidedly unavailable (a lone SRV target "."): empty at once. */
  unavailable(): void {
    this.#cancelDrop();
    this.#holding = false;
    this.#publish([]);
  }

  /** Resolver trouble: report it; the service keeps what it has. */
  failed(reason: string): void {
    if (!this.#stopped) this.#ctx.error(new Error(`${this.#what} failed (${reason}); keeping the last good endpoints`));
  }

  /** Report a problem with part of an answer (a skipped target, a wrong-family record). */
  partial(message: string): void {
    if (!this.#stopped) this.#ctx.error(new Error(`${this.#what}: ${message}`));
  }

  stop(): void {
    this.#stopped = true;
    this.#cancelDrop();
  }

  #drop(reason: string): void {
    this.#dropTimer = null;
    this.#holding = false;
    if (!this.#stopped) this.#ctx.log.warn(`${this.#what} ${reason}; dropping its endpoints`);
    this.#publish([]);
  }

  #cancelDrop(): void {
    if (this.#dropTimer !== null) clearTimeout(this.#dropTimer);
    this.#dropTimer = null;
  }

  #publish(specs: readonly EndpointSpec[]): void {
    if (this.#stopped) return;
    const key = specs
      .map((s) => `${s.origin} ${s.weight} ${s.priority} ${s.hashKey ?? ''}`)
      .sort()
      .join('\n');
    if (key === this.#lastKey) return;
    this.#lastKey = key;
    this.#ctx.update(specs);
  }
}

/** Make an endpoint for an address; null (and a warning) if it does not make a valid one. */
export function endpointFor(ctx: DiscoveryContext, protocol: string, address: string, port: number, extra: object, path: string): EndpointSpec | null {
  try {
    return parseEndpointSpec({ url: urlOf(protocol, address, port), ...extra }, path);
  } catch (err) {
    ctx.log.warn(`${path}: skipped ${address}: ${(err as Error).message}`);
    return null;
  }
}

class DnsSource implements DiscoverySource {
  readonly #o: DnsOptions;
  readonly #ctx: DiscoveryContext;
  readonly #resolver: Resolver;
  readonly #pub: DnsPublisher;
  readonly #backoff: Backoff;
  readonly #poller: Poller;
  readonly #onAbort = (): void => this.stop();
  /** Addresses of the last good answer, for a family whose query fails. */
  #current: Address[] = [];

  constructor(o: DnsOptions, ctx: DiscoveryContext) {
    this.#o = o;
    this.#ctx = ctx;
    this.#resolver = makeResolver(o);
    this.#pub = new DnsPublisher(o, ctx, `dns discovery: ${o.host}`);
    this.#backoff = new Backoff(o.minRefresh, o.maxRefresh, ctx.random);
    this.#poller = new Poller(
      () => this.#refresh(),
      (err) => {
        this.#pub.failed(`unexpected: ${(err as Error).message}`);
        return this.#backoff.next();
      },
    );
    if (ctx.signal.aborted) {
      this.stop();
      return;
    }
    ctx.signal.addEventListener('abort', this.#onAbort, { once: true });
    this.#poller.start();
  }

  /** One round of queries; returns the delay before the next. */
  async #refresh(): Promise<number> {
    const o = this.#o;
    const answer = await resolveHost(this.#resolver, o.host, o.family, this.#current);
    if (this.#poller.stopped) return 0;
    if (answer.skipped > 0) this.#ctx.log.warn(`dns discovery: ${o.host}: skipped ${answer.skipped} record(s) of the wrong address family`);
    if (answer.failure !== null) this.#pub.failed(answer.failure);
    if (!answer.fresh) {
      if (answer.failure === null) this.#current = []; // gone: a later partial failure must not bring these back
      if (answer.failure === null) this.#pub.none(`has no ${o.family === 'both' ? 'A or AAAA' : o.family === 4 ? 'A' : 'AAAA'} records (${answer.noData})`);
      return this.#backoff.next();
    }
    const specs: EndpointSpec[] = [];
    for (const a of answer.addresses) {
      const spec = endpointFor(this.#ctx, o.protocol, a.address, o.port, {}, `dns discovery: ${o.host}`);
      if (spec) specs.push(spec);
    }
    this.#current = answer.addresses;
    this.#pub.good(specs);
    if (answer.failure !== null) return this.#backoff.next();
    this.#backoff.reset();
    return ttlDelay(answer.ttl, o.minRefresh, o.maxRefresh);
  }

  stop(): void {
    if (this.#poller.stopped) return;
    this.#poller.stop();
    this.#pub.stop();
    this.#ctx.signal.removeEventListener('abort', this.#onAbort);
    this.#resolver.cancel();
  }
}

export const dnsDiscovery: DiscoveryDefinition<DnsOptions> = {
  create: (options, ctx) => new DnsSource(options, ctx),
  parseOptions(raw, path) {
    const o = expectObject(raw, path);
    rejectUnknown(o, ['host', 'port', ...COMMON_KEYS], path);
    const host = parseDnsName(o, 'host', path, 'orders.shop.svc.cluster.local');
    if (o.port === undefined) throw new InvalidConfigError(join(path, 'port'), 'required: the port the endpoints listen on');
    const port = checkNumber(o.port, join(path, 'port'), { integer: true, min: 1, max: 65535 });
    return Object.freeze({ host, port, ...parseCommon(o, path) });
  },
};
