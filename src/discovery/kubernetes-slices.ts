/**
 * EndpointSlices, checked one by one as they arrive, so a malformed slice can never break the
 * others (issue 11): {@link parseSlice} turns a raw object into a {@link Slice} or says why it
 * cannot be used; {@link slicePort} picks the configured port in it.
 *
 * Decisions (documented in the README):
 * - A slice whose `ports`, `endpoints` or `addressType` is not what the API allows (`ports:
 *   "http"`, `ports: [null]`, a port number out of range) is skipped and reported; the previous
 *   good version of that slice, if any, stays; every other slice and every later event applies.
 * - An endpoint entry that is malformed, or whose first address is not an IP of the slice's
 *   family, is skipped and reported; the rest of the slice is used — reported also when every
 *   entry is bad and none is left (kubernetes.ts reports {@link Slice.problems} whatever remains).
 * - `addressType: FQDN` (deprecated; the EndpointSlice controller never writes it) is skipped
 *   and reported: its "addresses" are names meshlet would have to resolve, which is DNS
 *   discovery's job.
 * - A slice with endpoints but no ports (`ports: null` or `[]`; the API's "no defined ports"),
 *   or whose port has no number ("all ports"): with a numeric `port` option that number is used;
 *   with a port name nothing can match, so its endpoints are skipped and reported. A slice with
 *   no endpoints (a Service with no pods) is never reported.
 */
import { isIP } from 'node:net';
import type { KubeObject } from './kubernetes-watch.js';

export interface SliceEndpoint {
  readonly address: string;
  /** Ready and not terminating: takes new requests. */
  readonly usable: boolean;
  readonly zone: string | undefined;
  readonly nodeName: string | undefined;
  /** Name of the pod it belongs to (targetRef kind Pod). */
  readonly pod: string | undefined;
}

export interface SlicePort {
  readonly name: string | undefined;
  /** undefined: "all ports" (the API's nil port). */
  readonly port: number | undefined;
}

export interface Slice {
  readonly name: string;
  readonly resourceVersion: string | undefined;
  readonly addressType: 'IPv4' | 'IPv6' | 'FQDN';
  readonly ports: readonly SlicePort[];
  readonly endpoints: readonly SliceEndpoint[];
  /** Endpoint entries skipped while parsing, with why (reported once per slice version). */
  readonly problems: readonly string[];
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const optString = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** The slice, or a sentence saying why it cannot be used at all. */
export function parseSlice(obj: KubeObject): Slice | string {
  const addressType = obj.addressType;
  if (addressType !== 'IPv4' && addressType !== 'IPv6' && addressType !== 'FQDN') {
    return `addressType is ${describe(addressType)}, expected "IPv4", "IPv6" or "FQDN"`;
  }
  const rawPorts = obj.ports ?? [];
  if (!Array.isArray(rawPorts)) return `ports is ${describe(rawPorts)}, expected a list`;
  const ports: SlicePort[] = [];
  for (const [i, p] of rawPorts.entries()) {
    if (!isObject(p)) return `ports[${i}] is ${describe(p)}, expected an object`;
    const port = p.port ?? undefined;
    if (port !== undefined && !(typeof port === 'number' && Number.isInteger(port) && port >= 1 && port <= 65535)) {
      return `ports[${i}].port is ${describe(port)}, expected 1–65535`;
    }
    const name = p.name ?? undefined;
    if (name !== undefined && typeof name !== 'string') return `ports[${i}].name is ${describe(name)}, expected a string`;
    ports.push({ name, port });
  }
  const rawEndpoints = obj.endpoints ?? [];
  if (!Array.isArray(rawEndpoints)) return `endpoints is ${describe(rawEndpoints)}, expected a list`;
  const endpoints: SliceEndpoint[] = [];
  const problems: string[] = [];
  const family = addressType === 'IPv4' ? 4 : 6;
  for (const [i, e] of rawEndpoints.entries()) {
    if (!isObject(e)) {
      problems.push(`endpoints[${i}] is ${describe(e)}`);
      continue;
    }
    const address = Array.isArray(e.addresses) ? e.addresses[0] : undefined;
    if (typeof address !== 'string') {
      problems.push(`endpoints[${i}] has no address`);
      continue;
    }
    if (addressType !== 'FQDN' && isIP(address) !== family) {
      problems.push(`endpoints[${i}]: address ${describe(address)} is not ${addressType}`);
      continue;
    }
    const c = isObject(e.conditions) ? e.conditions : {};
    const ready = typeof c.ready === 'boolean' ? c.ready : true; // nil ⇒ ready
    const terminating = c.terminating === true; // nil ⇒ false
    const ref = isObject(e.targetRef) ? e.targetRef : {};
    endpoints.push({
      address,
      usable: ready && !terminating,
      zone: optString(e.zone),
      nodeName: optString(e.nodeName),
      pod: ref.kind === 'Pod' ? optString(ref.name) : undefined,
    });
  }
  const rv = obj.metadata.resourceVersion;
  return { name: obj.metadata.name, resourceVersion: typeof rv === 'string' ? rv : undefined, addressType, ports, endpoints, problems };
}

/**
 * The port number to use for this slice's endpoints, or a sentence saying why there is none.
 * By name: the port with that name (it must have a number). By number: that port, or the number
 * itself when the slice defines no ports or a port without a number ("all ports").
 */
export function slicePort(slice: Slice, want: string | number): number | string {
  if (typeof want === 'number') {
    if (slice.ports.some((p) => p.port === want)) return want;
    if (slice.ports.length === 0 || slice.ports.some((p) => p.port === undefined)) return want;
    return `has no port ${want} (it has ${slice.ports.map((p) => p.port ?? 'all').join(', ')})`;
  }
  const named = slice.ports.find((p) => p.name === want);
  if (named === undefined) {
    return slice.ports.length === 0 ? `has no ports, so no port named "${want}"` : `has no port named "${want}" (it has ${slice.ports.map((p) => JSON.stringify(p.name ?? '')).join(', ')})`;
  }
  return named.port ?? `names port "${want}" without a number`;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'object') return 'an object';
  return typeof v === 'undefined' ? 'missing' : `${typeof v} ${String(v)}`;
}
