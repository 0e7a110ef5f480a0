/**
 * The caller's remaining time, read from the request's headers. Three are understood; when
 * several are there the shortest wins:
 *  - `grpc-timeout` — gRPC over HTTP/2 (PROTOCOL-HTTP2.md): at most 8 ASCII digits and a unit,
 *    `H` hours, `M` minutes, `S` seconds, `m` milliseconds, `u` microseconds, `n` nanoseconds
 *    (`100m`, `2S`);
 *  - `x-envoy-expected-rq-timeout-ms` — what an Envoy in front (Istio's sidecar) allows the
 *    request: its route's or try's timeout, whole milliseconds (0, a timeout turned off, is none);
 *  - `x-meshlet-deadline-ms` — what a meshlet client has left (request/attempt.ts sends it),
 *    whole milliseconds.
 * A malformed value is ignored (the request is served as if it had not come), never refused.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { DEADLINE_HEADER, ENVOY_TIMEOUT_HEADER } from '../request/inbound-context.js';

const GRPC_TIMEOUT = /^(\d{1,8})([HMSmun])$/;
const WHOLE_MS = /^\d{1,15}$/;
const UNIT_MS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 1e-3, n: 1e-6 };

/** The headers a deadline is read from, in the order they are looked at. */
export const DEADLINE_HEADERS = ['grpc-timeout', ENVOY_TIMEOUT_HEADER, DEADLINE_HEADER] as const;

/** A `grpc-timeout` value in ms, or undefined when it is not one. */
export function parseGrpcTimeout(value: string): number | undefined {
  const m = GRPC_TIMEOUT.exec(value.trim());
  return m === null ? undefined : Number(m[1]) * UNIT_MS[m[2]!]!;
}

/** Whole milliseconds, or undefined. */
function parseWholeMs(value: string): number | undefined {
  const v = value.trim();
  return WHOLE_MS.test(v) ? Number(v) : undefined;
}

function one(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/**
 * The time the caller gave the request, ms: the least of the deadline headers it carries, or
 * Infinity when it carries none (or none that parses).
 */
export function requestBudgetMs(headers: IncomingHttpHeaders): number {
  let ms = Infinity;
  const grpc = one(headers['grpc-timeout']);
  if (grpc !== undefined) ms = Math.min(ms, parseGrpcTimeout(grpc) ?? Infinity);
  const envoy = one(headers[ENVOY_TIMEOUT_HEADER]);
  const envoyMs = envoy === undefined ? undefined : parseWholeMs(envoy);
  if (envoyMs !== undefined && envoyMs > 0) ms = Math.min(ms, envoyMs);
  const own = one(headers[DEADLINE_HEADER]);
  if (own !== undefined) ms = Math.min(ms, parseWholeMs(own) ?? Infinity);
  return ms;
}
