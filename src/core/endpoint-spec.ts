/**
 * What discovery says about one endpoint, normalised: the input to {@link Endpoint}.
 * Discovery sources produce these; `parseEndpointSpec` turns user input into one.
 */
import { InvalidConfigError } from './errors.js';

/** An endpoint as discovery describes it, before normalisation. A bare string is a URL. */
export type EndpointInput =
  | string
  | {
      /** `http://host:port` or `https://host:port`; path, query and credentials are not allowed. */
      url: string;
      /** Relative weight, an integer from 1 to 1,000,000. @default 1 */
      weight?: number | undefined;
      /** Labels such as `{ version: 'v2' }`, used by subsets. */
      labels?: Record<string, string> | undefined;
      /** Availability zone, for locality-aware balancing. */
      zone?: string | undefined;
      /** Region, for locality-aware balancing. */
      region?: string | undefined;
      /** Key used by hash balancers instead of the address `host:port` (Envoy's `envoy.lb` `hash_key` metadata). */
      hashKey?: string | undefined;
      /**
       * Priority group, 0 (highest) to 128 (RFC 2782 SRV priorities, Envoy priority levels): the
       * lowest-numbered group takes all traffic while ~72 % of it is available, then spills over to
       * the next gradually. @default 0
       */
      priority?: number | undefined;
      /**
       * The workload's Kubernetes service account, `<namespace>/<name>`: its SPIFFE identity, which
       * `tls: { mode: 'istio-mutual' }` expects the endpoint's certificate to carry. The
       * `kubernetes` discovery fills it in from the endpoint's pod.
       */
      serviceAccount?: string | undefined;
    };

/** A normalised endpoint description. */
export interface EndpointSpec {
  /** `protocol//hostname:port`, the endpoint's identity. */
  readonly origin: string;
  readonly protocol: 'http:' | 'https:';
  readonly hostname: string;
  readonly port: number;
  readonly weight: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly zone: string | undefined;
  readonly region: string | undefined;
  readonly hashKey: string | undefined;
  readonly priority: number;
  /** `<namespace>/<name>` of the workload's service account, when known. */
  readonly serviceAccount: string | undefined;
}

const MAX_WEIGHT = 1_000_000;
/** `<namespace>/<name>`: a namespace (RFC 1123 label) and a service account name (a DNS subdomain). */
export const SERVICE_ACCOUNT = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\/[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const EMPTY_LABELS: Readonly<Record<string, string>> = Object.freeze({});

/**
 * Normalise one endpoint; throws {@link InvalidConfigError} naming `path` when the input is bad.
 */
/** A URL as an error message may show it: its userinfo (a password, a token) left out. */
function shown(url: string): string {
  return JSON.stringify(url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i, '$1…@'));
}

export function parseEndpointSpec(input: unknown, path: string): EndpointSpec {
  const obj = typeof input === 'string' ? { url: input } : input;
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    throw new InvalidConfigError(path, `expected a URL string or an object with "url", got ${describe(input)}`);
  }
  const o = obj as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!['url', 'weight', 'labels', 'zone', 'region', 'hashKey', 'priority', 'serviceAccount'].includes(k)) {
      throw new InvalidConfigError(`${path}.${k}`, 'unknown field (expected url, weight, labels, zone, region, hashKey, priority, serviceAccount)');
    }
  }
  if (typeof o.url !== 'string') throw new InvalidConfigError(`${path}.url`, `expected a URL string, got ${describe(o.url)}`);
  let url: URL;
  try {
    url = new URL(o.url);
  } catch {
    throw new InvalidConfigError(`${path}.url`, `expected an absolute http(s) URL, got ${shown(o.url)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidConfigError(`${path}.url`, `expected protocol http: or https:, got ${url.protocol}`);
  }
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash || url.username || url.password) {
    const why = url.username || url.password ? ': credentials in the URL are not allowed' : '';
    throw new InvalidConfigError(`${path}.url`, `expected an origin only (scheme, host, port)${why}, got ${shown(o.url)}`);
  }
  if (!url.hostname) throw new InvalidConfigError(`${path}.url`, 'expected a host');
  const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  // WHATWG URL accepts port 0, which no server listens on: a connection there fails at every
  // request, so it is refused here as SRV records and slices with port 0 are skipped.
  if (port === 0) throw new InvalidConfigError(`${path}.url`, `expected a port from 1 to 65535, got 0 in ${shown(o.url)}`);

  const weight = o.weight ?? 1;
  if (typeof weight !== 'number' || !Number.isInteger(weight) || weight < 1 || weight > MAX_WEIGHT) {
    throw new InvalidConfigError(`${path}.weight`, `expected an integer from 1 to ${MAX_WEIGHT}, got ${describe(weight)}`);
  }
  let labels = EMPTY_LABELS;
  if (o.labels !== undefined) {
    if (typeof o.labels !== 'object' || o.labels === null || Array.isArray(o.labels)) {
      throw new InvalidConfigError(`${path}.labels`, `expected an object of string values, got ${describe(o.labels)}`);
    }
    for (const [k, v] of Object.entries(o.labels)) {
      if (typeof v !== 'string') throw new InvalidConfigError(`${path}.labels.${k}`, `expected a string, got ${describe(v)}`);
    }
    labels = Object.freeze({ ...(o.labels as Record<string, string>) });
  }
  for (const k of ['zone', 'region', 'hashKey'] as const) {
    if (o[k] !== undefined && (typeof o[k] !== 'string' || o[k] === '')) {
      throw new InvalidConfigError(`${path}.${k}`, `expected a non-empty string, got ${describe(o[k])}`);
    }
  }
  const priority = o.priority ?? 0;
  if (typeof priority !== 'number' || !Number.isInteger(priority) || priority < 0 || priority > 128) {
    throw new InvalidConfigError(`${path}.priority`, `expected an integer from 0 to 128, got ${describe(priority)}`);
  }
  if (o.serviceAccount !== undefined && (typeof o.serviceAccount !== 'string' || !SERVICE_ACCOUNT.test(o.serviceAccount))) {
    throw new InvalidConfigError(`${path}.serviceAccount`, `expected "<namespace>/<service account>", got ${describe(o.serviceAccount)}`);
  }
  return Object.freeze({
    origin: url.origin,
    protocol: url.protocol,
    hostname: url.hostname,
    port,
    weight,
    labels,
    zone: o.zone as string | undefined,
    region: o.region as string | undefined,
    hashKey: o.hashKey as string | undefined,
    priority,
    serviceAccount: o.serviceAccount as string | undefined,
  });
}

/** Short description of a value for error messages ("a number (3)", "null", "an array"). */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `a string (${JSON.stringify(value.length > 60 ? value.slice(0, 60) + '…' : value)})`;
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value === 'number' ? 'a number' : 'a boolean'} (${value})`;
  if (value === undefined) return 'nothing';
  return `${typeof value === 'object' ? 'an object' : `a ${typeof value}`}`;
}

/** A host as a URL or a Host header writes it: an IPv6 address in brackets (once: `[::1]` stays as it is). */
export function urlHost(hostname: string): string {
  return hostname.includes(':') && !hostname.startsWith('[') ? `[${hostname}]` : hostname;
}

/** The same endpoint reached over TLS (a service with `tls` whose discovery yields plain addresses). */
export function overTls(spec: EndpointSpec): EndpointSpec {
  if (spec.protocol === 'https:') return spec;
  return Object.freeze({ ...spec, protocol: 'https:' as const, origin: `https://${urlHost(spec.hostname)}:${spec.port}` });
}
