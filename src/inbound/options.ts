/**
 * The options of an inbound entry point (`mesh.inbound`, `mesh.middleware`, `mesh.fastifyPlugin`),
 * checked once when it is made: every error is an InvalidConfigError naming the field
 * (`inbound.limits.maxRequests`). Limits and the rate limit reuse the service-side parsers, so a
 * field means here what it means for a service.
 */
import { expectList, expectObject, join, optNumber, optString, rejectUnknown } from '../config/check.js';
import { describe } from '../core/endpoint-spec.js';
import { InvalidConfigError } from '../core/errors.js';
import type { AdaptiveLimitConfig } from '../layers/adaptive-limit.js';
import { parseLimitsConfig, type ParsedLimits } from '../layers/concurrency-limit.js';
import { parseRateLimitConfig, type ParsedBucket } from '../layers/rate-limit.js';
import type { LoadReportOptions, ParsedLoadReports } from './load-report.js';

/** `limits` of an entry point: requests served at once, beyond which it answers 503. */
export interface InboundLimitsConfig {
  /** Requests in flight at once (with `adaptive`, the ceiling). @default 1024 */
  maxRequests?: number;
  /**
   * Learn the limit from the handler's latency instead of holding `maxRequests` — the
   * service-side limits' algorithms; here `algorithm` defaults to `'vegas'`, which Netflix's
   * concurrency-limits recommends for servers. Off unless set.
   */
  adaptive?: AdaptiveLimitConfig | Omit<AdaptiveLimitConfig, 'algorithm'>;
  /** `Retry-After` of the 503, seconds (0 – 3600). @default 1 */
  retryAfterSeconds?: number;
}

/** `rateLimit` of an entry point: a token bucket, beyond which it answers 429. */
export interface InboundRateLimitConfig {
  /** Sustained rate, requests per second. */
  requestsPerSecond: number;
  /** Bucket size: requests allowed in a burst. @default requestsPerSecond, at least 1 */
  burst?: number;
}

export interface InboundOptions {
  /** The entry point's name in `mesh.stats().inbound.entries` and in metrics. @default 'http', 'express' or 'fastify' */
  name?: string;
  /** Request headers copied onto the mesh calls made while serving, besides the tracing ones (say `end-user`). */
  propagate?: readonly string[];
  /** ORCA load reports on responses (`endpoint-load-metrics`). @default true */
  loadReports?: boolean | LoadReportOptions;
  /** A concurrency limit (503 beyond it). Off unless set. */
  limits?: InboundLimitsConfig;
  /** A rate limit (429 beyond it). Off unless set. */
  rateLimit?: InboundRateLimitConfig;
}

export interface ParsedInbound {
  readonly name: string | undefined;
  readonly propagate: readonly string[];
  readonly loadReports: ParsedLoadReports | null;
  readonly limits: ParsedLimits | null;
  readonly retryAfterSeconds: number;
  readonly rateLimit: ParsedBucket | null;
}

/** An HTTP header name (RFC 9110 token). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export function parseInboundOptions(raw: unknown, path: string): ParsedInbound {
  const o = raw === undefined ? {} : expectObject(raw, path);
  rejectUnknown(o, ['name', 'propagate', 'loadReports', 'limits', 'rateLimit'], path);
  const propagate =
    o.propagate === undefined
      ? []
      : expectList(o.propagate, join(path, 'propagate'), 'a list of header names').map((h, i) => {
          if (typeof h !== 'string' || !TOKEN.test(h)) throw new InvalidConfigError(join(join(path, 'propagate'), i), `expected a header name, got ${describe(h)}`);
          return h.toLowerCase();
        });
  let limits: ParsedLimits | null = null;
  let retryAfterSeconds = 1;
  if (o.limits !== undefined) {
    const p = join(path, 'limits');
    const l = expectObject(o.limits, p);
    rejectUnknown(l, ['maxRequests', 'adaptive', 'retryAfterSeconds'], p);
    retryAfterSeconds = optNumber(l, 'retryAfterSeconds', p, 1, { integer: true, min: 0, max: 3600 });
    const adaptive = l.adaptive === undefined ? undefined : { algorithm: 'vegas', ...expectObject(l.adaptive, join(p, 'adaptive')) };
    // No queue at the door: a request over the limit is answered 503 at once (as Netflix's server limiter and Envoy's adaptive concurrency do).
    limits = parseLimitsConfig({ maxRequests: l.maxRequests, maxPendingRequests: 0, maxQueueTimeMs: 0, adaptive }, p, true);
  }
  let rateLimit: ParsedBucket | null = null;
  if (o.rateLimit !== undefined) {
    const p = join(path, 'rateLimit');
    rejectUnknown(expectObject(o.rateLimit, p), ['requestsPerSecond', 'burst'], p);
    rateLimit = parseRateLimitConfig(o.rateLimit, p)!.service;
  }
  return Object.freeze({
    name: optString(o, 'name', path),
    propagate: Object.freeze(propagate),
    loadReports: parseLoadReports(o.loadReports, join(path, 'loadReports')),
    limits,
    retryAfterSeconds,
    rateLimit,
  });
}

function parseLoadReports(raw: unknown, path: string): ParsedLoadReports | null {
  if (raw === undefined || raw === true) return Object.freeze({ intervalMs: 1000, applicationUtilization: null });
  if (raw === false) return null;
  if (typeof raw !== 'object' || raw === null) throw new InvalidConfigError(path, `expected true, false or an object, got ${describe(raw)}`);
  const o = expectObject(raw, path);
  rejectUnknown(o, ['intervalMs', 'applicationUtilization'], path);
  const fn = o.applicationUtilization;
  if (fn !== undefined && typeof fn !== 'function') throw new InvalidConfigError(join(path, 'applicationUtilization'), `expected a function, got ${describe(fn)}`);
  return Object.freeze({
    intervalMs: optNumber(o, 'intervalMs', path, 1000, { integer: true, min: 100, max: 60_000 }),
    applicationUtilization: (fn as (() => number) | undefined) ?? null,
  });
}
