/**
 * Which host names reach a service, and which other hosts the dispatcher lets out.
 *
 * A service is addressed by its name, its `hosts` (exactly as written), and the Kubernetes forms
 * of its name — `name.ns`, `name.ns.svc`, `name.ns.svc.<clusterDomain>` — for each namespace it
 * is known in: its Kubernetes discovery's namespace, and its `namespaces` (default: the mesh's
 * `namespace`). Kubernetes DNS gives `orders.<ns>` to the Service `orders` of namespace `<ns>`
 * only, so in any other namespace — `orders.evil`, or `orders.com` — it names something else and
 * is an unknown host here too. The whole list is computed once, at createMesh; the dispatcher
 * looks names up exactly (core/dispatcher.ts).
 *
 * Unknown hosts go out through an ordinary Agent (`'passthrough'`), fail with UNKNOWN_SERVICE
 * (`'reject'`), or go out only when listed (`{ passthrough: [...] }`: exact host names and IP
 * addresses, and domain suffixes starting with '.').
 */
import { describe } from '../core/endpoint-spec.js';
import { InvalidConfigError } from '../core/errors.js';
import { expectObject, join, rejectUnknown, type Raw } from '../config/check.js';

/** `unknownHosts`, parsed: suffix entries keep their leading '.'. */
export type UnknownHosts = 'passthrough' | 'reject' | { readonly passthrough: readonly string[] };

/** The mesh-level fields about hosts. */
export interface ParsedMeshHosts {
  readonly unknownHosts: UnknownHosts;
  readonly namespace: string | undefined;
  readonly clusterDomain: string;
}

/** A Kubernetes namespace name: an RFC 1123 label. */
const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** A DNS name, lower-case, no trailing dot (labels of letters, digits, '-' and '_'). */
const DNS_NAME = /^(?=.{1,253}$)[a-z0-9_]([-a-z0-9_]{0,61}[a-z0-9_])?(\.[a-z0-9_]([-a-z0-9_]{0,61}[a-z0-9_])?)*$/;
const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;
const IPV6 = /^\[[0-9a-f:.]+\]$/;

export function parseMeshHosts(cfg: Raw): ParsedMeshHosts {
  const namespace = cfg.namespace === undefined ? undefined : checkNamespace(cfg.namespace, 'namespace');
  let clusterDomain = 'cluster.local';
  if (cfg.clusterDomain !== undefined) {
    const d = cfg.clusterDomain;
    if (typeof d !== 'string' || !DNS_NAME.test(d)) {
      throw new InvalidConfigError('clusterDomain', `expected a lower-case DNS domain such as "cluster.local", got ${describe(d)}`);
    }
    clusterDomain = d;
  }
  return { unknownHosts: parseUnknownHosts(cfg.unknownHosts), namespace, clusterDomain };
}

function parseUnknownHosts(raw: unknown): UnknownHosts {
  if (raw === undefined) return 'passthrough';
  if (raw === 'passthrough' || raw === 'reject') return raw;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new InvalidConfigError('unknownHosts', `expected one of "passthrough", "reject" or { passthrough: [hosts] }, got ${describe(raw)}`);
  }
  const o = expectObject(raw, 'unknownHosts');
  rejectUnknown(o, ['passthrough'], 'unknownHosts');
  const path = 'unknownHosts.passthrough';
  if (!Array.isArray(o.passthrough)) throw new InvalidConfigError(path, `expected a list of host names, got ${describe(o.passthrough)}`);
  const list = o.passthrough.map((v, i) => passthroughEntry(v, join(path, i)));
  return Object.freeze({ passthrough: Object.freeze([...new Set(list)]) });
}

/** One entry of the list, lower-cased; anything a URL's host would not equal is refused. */
function passthroughEntry(v: unknown, path: string): string {
  const expected = 'expected a host name or IP address ("api.stripe.com", "10.0.0.5", "[fd00::1]") or a domain suffix starting with "." (".example.org")';
  if (typeof v !== 'string' || v === '') throw new InvalidConfigError(path, `${expected}, got ${describe(v)}`);
  const entry = v.toLowerCase();
  if (entry.startsWith('*.')) throw new InvalidConfigError(path, `a wildcard is written as a suffix: "${entry.slice(1)}", got ${describe(v)}`);
  const suffix = entry.startsWith('.');
  const host = suffix ? entry.slice(1) : entry;
  if (/^([^[\]/]+|\[[^\]/]*\]):\d+$/.test(host)) throw new InvalidConfigError(path, `no port: an entry matches every port (an IPv6 address goes in brackets), got ${describe(v)}`);
  const ip = IPV4.test(host) || IPV6.test(host);
  if (!(ip || DNS_NAME.test(host)) || canonicalHost(host) !== host) throw new InvalidConfigError(path, `${expected}, got ${describe(v)}`);
  if (suffix && ip) throw new InvalidConfigError(path, `a suffix is a domain, not an IP address, got ${describe(v)}`);
  return entry;
}

/** `host` as a URL writes it (IPs normalised), or undefined when a URL would not take it. */
function canonicalHost(host: string): string | undefined {
  try {
    return new URL(`http://${host}/`).hostname;
  } catch {
    return undefined;
  }
}

/** A service's `namespaces`: the list given, else the mesh's `namespace`, else none. */
export function parseNamespaces(raw: unknown, path: string, meshDefault: string | undefined): readonly string[] {
  if (raw === undefined) return Object.freeze(meshDefault === undefined ? [] : [meshDefault]);
  if (!Array.isArray(raw)) throw new InvalidConfigError(path, `expected a list of Kubernetes namespaces, got ${describe(raw)}`);
  return Object.freeze([...new Set(raw.map((ns, i) => checkNamespace(ns, join(path, i))))]);
}

function checkNamespace(v: unknown, path: string): string {
  if (typeof v !== 'string' || !NAMESPACE.test(v)) {
    throw new InvalidConfigError(path, `expected a Kubernetes namespace (a lower-case DNS label of at most 63 characters), got ${describe(v)}`);
  }
  return v;
}

/**
 * Every host name that addresses a service: its name, its `hosts`, and the Kubernetes forms of its
 * name (when it has no dot) in each of `namespaces`.
 */
export function serviceAddresses(name: string, hosts: readonly string[], namespaces: readonly string[], clusterDomain: string): readonly string[] {
  const all = new Set([name, ...hosts]);
  if (!name.includes('.')) {
    for (const ns of namespaces) for (const form of [`${name}.${ns}`, `${name}.${ns}.svc`, `${name}.${ns}.svc.${clusterDomain}`]) all.add(form);
  }
  return Object.freeze([...all]);
}

/**
 * Whether a host that is no service may go out through an ordinary Agent, decided from its
 * `URL.hostname` (lower-case; a trailing dot is ignored).
 */
export function passthroughRule(unknownHosts: UnknownHosts): (hostname: string) => boolean {
  if (unknownHosts === 'passthrough') return () => true;
  if (unknownHosts === 'reject') return () => false;
  const exact = new Set<string>();
  const suffixes: string[] = [];
  for (const e of unknownHosts.passthrough) {
    if (e.startsWith('.')) suffixes.push(e);
    else exact.add(e);
  }
  return (hostname) => {
    const host = hostname.endsWith('.') ? hostname.slice(0, -1) : hostname;
    return exact.has(host) || suffixes.some((s) => host.endsWith(s));
  };
}

/**
 * The service's FQDN (`name.ns.svc.<cluster domain>`) among its `addresses`, else its first dotted
 * host, else its name: the host of istio-mutual's SNI.
 */
export function meshHost(service: { readonly name: string; readonly hosts: readonly string[]; readonly addresses: readonly string[] }): string {
  return service.addresses.find((a) => /^[^.]+\.[^.]+\.svc\../.test(a)) ?? service.hosts.find((h) => h.includes('.')) ?? service.name;
}
