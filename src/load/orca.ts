/**
 * ORCA load reports read from a response's headers, as Envoy reads them
 * (`source/common/orca/orca_parser.cc`): the report is an `xds.data.orca.v3.OrcaLoadReport`
 * (cncf/xds) a backend attaches to its responses to say how loaded it is.
 *
 *  - `endpoint-load-metrics-bin: <base64 protobuf>` — the older header, inherited from gRPC; when
 *    present it wins over the other.
 *  - `endpoint-load-metrics: <FORMAT> <report>`, FORMAT one of
 *    - `TEXT` — comma-separated `name:value` pairs:
 *      `TEXT cpu_utilization:0.7, rps_fractional:1000, named_metrics.rif:12`. Names:
 *      `cpu_utilization`, `mem_utilization`, `application_utilization`, `rps_fractional`, `eps`
 *      and `named_metrics.<name>`; a name given twice, an unknown name or a value that is not a
 *      decimal number makes the report invalid.
 *    - `JSON` — the report in proto3 JSON (`{"cpu_utilization": 0.7, "named_metrics": {"rif": 12}}`,
 *      field names as in the proto or in lowerCamelCase); an unknown field makes it invalid.
 *    - `BIN` — base64 of the serialized protobuf (orca-proto.ts decodes it).
 *
 * One rule more than Envoy's, so a report can never turn a balancer's arithmetic into NaN: every
 * value must be finite and keep the proto's validation rules (utilizations, rates ≥ 0;
 * `mem_utilization` and `utilization` values ≤ 1). An invalid report is returned with the reason,
 * never thrown: the caller counts it and ignores it.
 */
import { LRUCache } from 'lru-cache';
import { decodeOrcaProto, emptyFields, type OrcaFields } from './orca-proto.js';

/** The header carrying a report with a format prefix. */
export const LOAD_METRICS_HEADER = 'endpoint-load-metrics';
/** The older header: base64 protobuf, no prefix. */
export const LOAD_METRICS_BIN_HEADER = 'endpoint-load-metrics-bin';

/** A load report (`xds.data.orca.v3.OrcaLoadReport`), fields named as in proto3 JSON; absent fields are 0 or empty. */
export type LoadReport = Readonly<{
  [K in keyof OrcaFields]: OrcaFields[K] extends Record<string, number> ? Readonly<Record<string, number>> : number;
}>;

/** What the headers held: a report, or one that was invalid and why. */
export type LoadReportResult = { readonly type: 'report'; readonly report: LoadReport } | { readonly type: 'invalid'; readonly reason: string };

type Headers = Record<string, string | string[] | undefined>;

const TEXT_NAMES = new Map<string, keyof OrcaFields>([
  ['cpu_utilization', 'cpuUtilization'],
  ['mem_utilization', 'memUtilization'],
  ['application_utilization', 'applicationUtilization'],
  ['rps_fractional', 'rpsFractional'],
  ['eps', 'eps'],
]);
const NAMED = 'named_metrics.';
const JSON_NAMES = new Map<string, keyof OrcaFields>();
for (const [proto, field] of [...TEXT_NAMES, ['rps', 'rps'], ['request_cost', 'requestCost'], ['utilization', 'utilization'], ['named_metrics', 'namedMetrics']] as const) {
  JSON_NAMES.set(proto, field);
  JSON_NAMES.set(field, field);
}
const MAPS = new Set<keyof OrcaFields>(['requestCost', 'utilization', 'namedMetrics']);
/** A decimal number, as Envoy's TEXT values are (absl::SimpleAtod without inf / nan, which it rejects anyway). */
const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * The load report in `headers` (lower-case names, as undici gives them), or null when there is
 * none. Never throws.
 */
export function readLoadReport(headers: Headers): LoadReportResult | null {
  const bin = first(headers[LOAD_METRICS_BIN_HEADER]);
  let parsed: OrcaFields | string;
  if (bin !== undefined) parsed = parseBinary(bin);
  else {
    const value = first(headers[LOAD_METRICS_HEADER]);
    if (value === undefined) return null;
    if (value.startsWith('BIN ')) parsed = parseBinary(value.slice(4));
    else if (value.startsWith('TEXT ')) parsed = parseText(value.slice(5));
    else if (value.startsWith('JSON ')) parsed = parseJson(value.slice(5));
    else parsed = `unsupported format "${value.slice(0, 5).split(' ')[0]}" (expected TEXT, JSON or BIN)`;
  }
  if (typeof parsed === 'string') return Object.freeze({ type: 'invalid', reason: parsed });
  const wrong = checkRanges(parsed);
  if (wrong !== undefined) return Object.freeze({ type: 'invalid', reason: wrong });
  for (const m of MAPS) Object.freeze(parsed[m as 'namedMetrics']);
  return Object.freeze({ type: 'report', report: Object.freeze(parsed) });
}

/**
 * {@link readLoadReport} with its results remembered by header value (lru-cache, `max` values).
 * A backend's report changes little between responses — meshlet's inbound side sends the same
 * text for a second but for its requests-in-flight count, a small number — and a parse costs
 * microseconds, while a lookup costs a hash of the value. Results are frozen, so a remembered one
 * is shared safely; an invalid report is remembered too (it is counted every time all the same).
 */
export class LoadReportReader {
  /** One cache per header (the binary one wins when both are sent): any text may be in either. */
  readonly #text: LRUCache<string, LoadReportResult>;
  readonly #bin: LRUCache<string, LoadReportResult>;

  constructor(max = 256) {
    this.#text = new LRUCache({ max });
    this.#bin = new LRUCache({ max });
  }

  read(headers: Headers): LoadReportResult | null {
    const bin = first(headers[LOAD_METRICS_BIN_HEADER]);
    const cache = bin !== undefined ? this.#bin : this.#text;
    const key = bin !== undefined ? bin : first(headers[LOAD_METRICS_HEADER]);
    if (key === undefined) return null;
    let r = cache.get(key);
    if (r === undefined) {
      r = readLoadReport(headers)!;
      cache.set(key, r);
    }
    return r;
  }
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function parseBinary(text: string): OrcaFields | string {
  const b64 = text.trim();
  if (b64 === '') return 'the binary report is empty';
  const padded = b64.includes('=');
  if (!BASE64.test(b64) || (padded ? b64.length % 4 !== 0 : b64.length % 4 === 1)) return 'the binary report is not base64';
  const bytes = Buffer.from(b64, 'base64');
  if (bytes.length === 0) return 'the binary report is empty';
  const fields = decodeOrcaProto(bytes);
  return typeof fields === 'string' ? `the binary report is not an OrcaLoadReport: ${fields}` : fields;
}

function parseText(text: string): OrcaFields | string {
  const out = emptyFields();
  const seen = new Set<string>();
  for (const token of text.split(',')) {
    const colon = token.indexOf(':');
    const name = (colon < 0 ? token : token.slice(0, colon)).trim();
    const value = colon < 0 ? '' : token.slice(colon + 1).trim();
    if (name === '') return 'a metric name is empty';
    if (seen.has(name)) return `metric "${name}" is given twice`;
    seen.add(name);
    if (value === '') return `metric "${name}" has no value`;
    if (!DECIMAL.test(value)) return `metric "${name}": "${value}" is not a decimal number`;
    const v = Number(value);
    if (name.startsWith(NAMED)) {
      const key = name.slice(NAMED.length);
      if (key === '') return 'a named metric has an empty name';
      out.namedMetrics[key] = v;
      continue;
    }
    const field = TEXT_NAMES.get(name);
    if (field === undefined) return `unknown metric "${name}"`;
    (out[field] as number) = v;
  }
  return out;
}

function parseJson(text: string): OrcaFields | string {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return 'the JSON report is not JSON';
  }
  if (!isObject(doc)) return 'the JSON report is not an object';
  const out = emptyFields();
  const seen = new Set<keyof OrcaFields>();
  for (const [key, value] of Object.entries(doc)) {
    const field = JSON_NAMES.get(key);
    if (field === undefined) return `unknown field "${key}"`;
    if (seen.has(field)) return `field "${key}" is given twice`;
    seen.add(field);
    if (value === null) continue; // proto3 JSON: null is the default value
    if (MAPS.has(field)) {
      if (!isObject(value)) return `field "${key}" is not an object`;
      const into = out[field as 'namedMetrics'];
      for (const [k, v] of Object.entries(value)) {
        const n = jsonDouble(v);
        if (n === undefined) return `"${key}.${k}" is not a number`;
        into[k] = n;
      }
    } else {
      const n = jsonDouble(value);
      if (n === undefined || (field === 'rps' && !Number.isInteger(n))) return `field "${key}" is not a number`;
      (out[field] as number) = n;
    }
  }
  return out;
}

/** A proto3 JSON double: a number, or a string holding one. */
function jsonDouble(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && DECIMAL.test(v.trim())) return Number(v);
  return undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The proto's validation rules (and finiteness); the first broken one, or undefined. */
function checkRanges(f: OrcaFields): string | undefined {
  const bad = (name: string, v: number, max = Infinity): string | undefined =>
    Number.isFinite(v) && v >= 0 && v <= max ? undefined : `${name} is ${v}, expected a finite number ≥ 0${max < Infinity ? ` and ≤ ${max}` : ''}`;
  const scalar =
    bad('cpu_utilization', f.cpuUtilization) ??
    bad('mem_utilization', f.memUtilization, 1) ??
    bad('application_utilization', f.applicationUtilization) ??
    bad('rps_fractional', f.rpsFractional) ??
    bad('eps', f.eps) ??
    bad('rps', f.rps);
  if (scalar !== undefined) return scalar;
  for (const [k, v] of Object.entries(f.utilization)) {
    const e = bad(`utilization.${k}`, v, 1);
    if (e !== undefined) return e;
  }
  for (const [name, map] of [['named_metrics', f.namedMetrics], ['request_cost', f.requestCost]] as const) {
    for (const [k, v] of Object.entries(map)) if (!Number.isFinite(v)) return `${name}.${k} is ${v}, expected a finite number`;
  }
  return undefined;
}
