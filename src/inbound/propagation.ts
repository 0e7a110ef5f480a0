/**
 * The context one served request hands to the mesh calls made while serving it: its deadline and
 * the headers that travel on.
 *
 * Headers copied: the ones Istio asks every application to propagate
 * (istio.io, "Distributed tracing" FAQ) — `x-request-id`, `traceparent`, `tracestate`,
 * `baggage`, `b3` and `x-b3-traceid` / `-spanid` / `-parentspanid` / `-sampled` / `-flags`,
 * `x-ot-span-context` — and the ones an entry point adds (`propagate`, say `end-user` for
 * routing). A request without `x-request-id` gets one (a random UUID, as Envoy makes it), set on
 * `req.headers` too so the application logs the same id. What OpenTelemetry writes is left to it
 * (otel.ts).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { InboundContext } from '../request/inbound-context.js';
import { otelFields, otelInject, undiciInstrumented } from './otel.js';

export const REQUEST_ID_HEADER = 'x-request-id';

/** The headers Istio asks applications to propagate. */
export const PROPAGATED_HEADERS: readonly string[] = Object.freeze([
  REQUEST_ID_HEADER,
  'traceparent',
  'tracestate',
  'baggage',
  'b3',
  'x-b3-traceid',
  'x-b3-spanid',
  'x-b3-parentspanid',
  'x-b3-sampled',
  'x-b3-flags',
  'x-ot-span-context',
]);

/** What the application can read of the request it serves (`inboundRequest()`). */
export interface InboundRequest {
  /** The request's `x-request-id`: the caller's, or the one made for it. */
  readonly requestId: string;
  /** Time left before the caller's deadline, ms; Infinity when it gave none. */
  remainingMs(): number;
  /** The value of a propagated header as the request brought it (`traceparent`, a `propagate` one), or undefined. */
  header(name: string): string | undefined;
}

export class RequestContext implements InboundContext, InboundRequest {
  readonly deadlineAtMs: number;
  readonly now: () => number;
  /** The incoming request's values of the propagated headers: flat `[name, value, …]`. */
  readonly #copied: string[];
  /**
   * OpenTelemetry's fields, read at the first outgoing call (asking OpenTelemetry's global API
   * costs about a microsecond: a request that makes no call does not pay it); null until then.
   */
  #otel: readonly string[] | null = null;

  /**
   * @param names lower-case header names to copy (PROPAGATED_HEADERS and the entry point's own)
   * @param deadlineAtMs on `now`'s clock; Infinity for none
   */
  constructor(headers: IncomingHttpHeaders, names: readonly string[], deadlineAtMs: number, now: () => number) {
    this.deadlineAtMs = deadlineAtMs;
    this.now = now;
    const copied: string[] = [];
    for (const name of names) {
      const v = headers[name];
      if (v === undefined) {
        if (name === REQUEST_ID_HEADER) copied.push(name, (headers[name] = randomUUID()));
        continue;
      }
      copied.push(name, Array.isArray(v) ? v.join(', ') : v);
    }
    this.#copied = copied;
  }

  get requestId(): string {
    const c = this.#copied;
    for (let i = 0; i < c.length; i += 2) if (c[i] === REQUEST_ID_HEADER) return c[i + 1]!;
    return '';
  }

  header(name: string): string | undefined {
    const c = this.#copied;
    const n = name.toLowerCase();
    for (let i = 0; i < c.length; i += 2) if (c[i] === n) return c[i + 1];
    return undefined;
  }

  remainingMs(): number {
    return this.deadlineAtMs - this.now();
  }

  outgoingHeaders(): readonly string[] {
    const otel = (this.#otel ??= otelFields());
    if (otel.length === 0) return this.#copied;
    // OpenTelemetry's fields are its own: its undici instrumentation writes them, or the active
    // context does; the incoming values only when the active context writes nothing.
    const injected = undiciInstrumented() ? null : otelInject();
    const out: string[] = [];
    if (injected !== null) for (const k of Object.keys(injected)) out.push(k, injected[k]!);
    const copyOtel = injected !== null && out.length === 0;
    const c = this.#copied;
    for (let i = 0; i < c.length; i += 2) if (copyOtel || !otel.includes(c[i]!)) out.push(c[i]!, c[i + 1]!);
    return out;
  }
}

/** The header names an entry point copies: Istio's and `extra` (lower-case, without repeats). */
export function propagatedNames(extra: readonly string[]): readonly string[] {
  return extra.length === 0 ? PROPAGATED_HEADERS : Object.freeze([...new Set([...PROPAGATED_HEADERS, ...extra.map((h) => h.toLowerCase())])]);
}
