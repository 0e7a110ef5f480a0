/**
 * What `dns` and `dns-srv` share: their common options (user-facing and parsed), one resolver
 * per source, and one host's A/AAAA lookup with the per-family fallback (a family whose query
 * fails keeps its last good addresses).
 *
 * Queries go to `servers` when given (a cluster's DNS, a test server), else to the system's
 * resolvers, through node:dns `Resolver` (c-ares; no cache of its own). Names are queried as
 * given: no search list, so use fully qualified names.
 */
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import { InvalidConfigError } from '../core/errors.js';
import { describe, parseEndpointSpec, type EndpointSpec } from '../core/endpoint-spec.js';
import { checkNumber, expectList, join, optEnum, optNumber, type Raw } from '../config/check.js';
import { DNS_BACKOFF_CAP_MS, type BackoffBounds } from './backoff.js';
import { optDurationMs, type Duration } from '../config/duration.js';

/** Options `dns` and `dns-srv` share, as written in the config. Durations: ms or `'2s'`-style strings. */
export interface DnsCommonConfig {
  /** DNS servers as `ip`, `ip:port`, `[ipv6]:port`. @default the system's resolvers */
  servers?: readonly string[];
  /** Address families to ask for. @default 'both' */
  family?: 4 | 6 | 'both';
  /** Scheme of the endpoints. @default 'http' */
  protocol?: 'http' | 'https';
  /** Shortest interval between two refreshes; floor of TTLs and back-off. 10 ms – 1 day. @default 1000 */
  minRefreshMs?: Duration;
  /** Longest interval between two refreshes; ceiling of TTLs. ≥ minRefreshMs. @default 300000 */
  maxRefreshMs?: Duration;
  /** How long c-ares waits for a reply to one try. 10–60 000 ms. @default 2000 */
  timeoutMs?: Duration;
  /** Tries per server before a query fails (c-ares `tries`), 1–10. @default 2 */
  tries?: number;
  /** After a good answer, what an NXDOMAIN/NODATA does. @default 'keep' */
  onNxdomain?: 'keep' | 'drop';
  /** With `onNxdomain: 'keep'`, how long the last good set outlives the name. 0 – 1 day. @default 60000 */
  keepForMs?: Duration;
  /** @deprecated use `minRefreshMs` (same unit: ms) */
  minRefresh?: number;
  /** @deprecated use `maxRefreshMs` (same unit: ms) */
  maxRefresh?: number;
  /** @deprecated use `timeoutMs` (same unit: ms) */
  timeout?: number;
  /** @deprecated use `keepForMs` (same unit: ms) */
  keepFor?: number;
}

/** Options `dns` and `dns-srv` share, parsed: every duration in ms. */
export interface DnsCommonOptions {
  readonly servers: readonly string[] | undefined;
  readonly family: 4 | 6 | 'both';
  readonly protocol: 'http' | 'https';
  readonly minRefreshMs: number;
  readonly maxRefreshMs: number;
  readonly timeoutMs: number;
  readonly tries: number;
  readonly onNxdomain: 'keep' | 'drop';
  readonly keepForMs: number;
}

const DAY_MS = 86_400_000;
/** Option names `dns` and `dns-srv` share, for `rejectUnknown`… */
export const COMMON_KEYS = ['servers', 'family', 'protocol', 'minRefreshMs', 'maxRefreshMs', 'timeoutMs', 'tries', 'onNxdomain', 'keepForMs'];
/** …and their deprecated names, still accepted but never suggested. */
export const COMMON_DEPRECATED = ['minRefresh', 'maxRefresh', 'timeout', 'keepFor'];
const ms = (key: string) => ({ key, unitMs: 1 });

/** Validate the shared options; every error names its field under `path`. */
export function parseCommon(o: Raw, path: string): DnsCommonOptions {
  const servers = o.servers === undefined ? undefined : parseServers(o.servers, join(path, 'servers'));
  const family = o.family ?? 'both';
  if (family !== 4 && family !== 6 && family !== 'both') {
    throw new InvalidConfigError(join(path, 'family'), `expected 4, 6 or "both", got ${describe(family)}`);
  }
  const minRefreshMs = optDurationMs(o, 'minRefreshMs', path, 1_000, { min: 10, max: DAY_MS }, ms('minRefresh'));
  return {
    servers,
    family,
    protocol: optEnum(o, 'protocol', path, ['http', 'https'], 'http'),
    minRefreshMs,
    maxRefreshMs: optDurationMs(o, 'maxRefreshMs', path, Math.max(minRefreshMs, 300_000), { min: minRefreshMs, max: DAY_MS }, ms('maxRefresh')),
    timeoutMs: optDurationMs(o, 'timeoutMs', path, 2_000, { integer: true, min: 10, max: 60_000 }, ms('timeout')),
    tries: optNumber(o, 'tries', path, 2, { integer: true, min: 1, max: 10 }),
    onNxdomain: optEnum(o, 'onNxdomain', path, ['keep', 'drop'], 'keep'),
    keepForMs: optDurationMs(o, 'keepForMs', path, 60_000, { min: 0, max: DAY_MS }, ms('keepFor')),
  };
}

function parseServers(value: unknown, path: string): readonly string[] {
  const expected = 'a non-empty list of "ip:port" strings';
  const servers = expectList(value, path, expected);
  if (servers.length === 0) throw new InvalidConfigError(path, `expected ${expected}, got an empty one`);
  const list = servers.map((s, i) => {
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

/** The back-off of a DNS source: from minRefreshMs, capped at 30 s, or at maxRefreshMs when smaller. */
export function dnsBackoff(o: DnsCommonOptions): BackoffBounds {
  return { minMs: o.minRefreshMs, maxMs: Math.max(o.minRefreshMs, Math.min(o.maxRefreshMs, DNS_BACKOFF_CAP_MS)) };
}

/** A resolver of its own per source (so `cancel()` on stop touches no one else's queries). */
export function makeResolver(o: DnsCommonOptions): Resolver {
  const r = new Resolver({ timeout: o.timeoutMs, tries: o.tries });
  if (o.servers) r.setServers(o.servers);
  return r;
}

/** NXDOMAIN (`ENOTFOUND`) or NOERROR without records (`ENODATA`): the name has nothing, authoritatively. */
export const isNoData = (code: string | undefined): boolean => code === 'ENOTFOUND' || code === 'ENODATA';

/**
 * What an answer without a usable record is called in messages. c-ares answers a CNAME chain
 * that loops (or leads to a name with no record of the type) with an empty list, not an error:
 * without this, the message read "(null)".
 */
export const EMPTY_ANSWER = 'an empty answer: no record at the end of the CNAME chain, or a CNAME loop';

/** The error code of a failed node:dns query, never empty: the code, else the message. */
export function dnsErrorCode(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (typeof e?.code === 'string' && e.code !== '') return e.code;
  const message = typeof e?.message === 'string' ? e.message.trim() : '';
  return message === '' ? 'unknown DNS error' : message;
}

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
  /** Why no family had records (NXDOMAIN/NODATA code, or {@link EMPTY_ANSWER}); null when some had. */
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
        return { f, records: null, code: dnsErrorCode(err) };
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
      if (!a.records.some((r) => isIP(r.address) === a.f)) noData ??= a.records.length === 0 ? EMPTY_ANSWER : 'only records of the other address family';
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

/** Make an endpoint for an address; null, and why in `skipped`, if it does not make a valid one. */
export function endpointFor(protocol: string, address: string, port: number, extra: object, path: string, skipped: string[]): EndpointSpec | null {
  try {
    return parseEndpointSpec({ url: urlOf(protocol, address, port), ...extra }, path);
  } catch (err) {
    skipped.push(`${address}: ${(err as Error).message}`);
    return null;
  }
}
