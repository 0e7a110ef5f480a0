/**
 * A VirtualService route's `retries` and `fault`, as Istio programs them into Envoy
 * (pilot/pkg/networking/core/route/retry/retry.go, route.go TranslateFault): `attempts` unset or
 * 0 turns retries off; `retryOn` unset is Istio's default list; a fault without a percentage
 * injects nothing.
 */
import { STATUS_CODES } from 'node:http';
import type { RetryConfig, RetryOn } from '../layers/retry-policy.js';
import type { FaultConfig } from '../layers/fault.js';
import type { Doc, Obj } from './doc.js';
import { istioRetry } from './defaults.js';
import { CAP, integerIn, istioDuration, longest } from './bounds.js';

/** Envoy's retry conditions that map to meshlet's own, one for one. */
const SAME = new Set<string>(['5xx', 'gateway-error', 'reset', 'connect-failure']);
/**
 * Conditions that never hold between meshlet and an endpoint: meshlet talks HTTP/1.1, where no
 * stream is refused, no gRPC status arrives and there is no HTTP/3. Accepted, as Istio's default
 * list names some of them, and dropped.
 */
const NEVER = new Set(['refused-stream', 'cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable', 'http3-post-connect-failure']);
/** Conditions Istio accepts that meshlet cannot apply, and why. */
const CANNOT: Record<string, string> = {
  'envoy-ratelimited': 'meshlet does not retry on x-envoy-ratelimited',
  'retriable-headers': 'meshlet does not read x-envoy-retriable-header-names',
};
/** Istio's validation list (pkg/config/validation/agent/validation.go), for the error message. */
const ISTIO_RETRY_ON = ['5xx', 'gateway-error', 'reset', 'reset-before-request', 'connect-failure', 'retriable-4xx', 'refused-stream', 'retriable-status-codes', 'retriable-headers', 'envoy-ratelimited', 'http3-post-connect-failure', 'cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable'];

/** `retryOn` as meshlet's retry conditions and status codes. */
function retryOn(text: string, doc: Doc, path: string): Pick<RetryConfig, 'retryOn' | 'retriableStatusCodes'> {
  const on = new Set<RetryOn>();
  const codes = new Set<number>();
  for (const c of text.split(',').map((x) => x.trim()).filter(Boolean)) {
    if (/^\d+$/.test(c) && STATUS_CODES[Number(c)] !== undefined) {
      const code = Number(c);
      if (code >= 400 && code <= 599) codes.add(code);
      else doc.unsupported(path, `status ${code} is not retried: meshlet retries statuses from 400 to 599`);
    } else if (SAME.has(c)) on.add(c as RetryOn);
    else if (c === 'retriable-4xx') codes.add(409); // Envoy's only retriable 4xx
    else if (c === 'reset-before-request') {
      on.add('connect-failure');
      doc.unsupported(path, '"reset-before-request" is applied as connect-failure: meshlet does not tell a reset before the request was written from one after');
    } else if (Object.hasOwn(CANNOT, c)) doc.unsupported(path, `"${c}" is not applied: ${CANNOT[c]}`);
    else if (!NEVER.has(c) && c !== 'retriable-status-codes') doc.bad(path, `"${c}" is not a retry condition Istio accepts (${ISTIO_RETRY_ON.join(', ')}, or a status code)`);
  }
  // `retriable-status-codes` with no codes retries no status (meshlet's own default would be 503).
  if (codes.size > 0) on.add('retriable-status-codes');
  return { retryOn: [...on], ...(codes.size > 0 ? { retriableStatusCodes: [...codes] } : {}) };
}

/** `retries`: false when `attempts` is unset or 0, as Istio turns the policy off. */
export function retries(o: Obj, doc: Doc, path: string): RetryConfig | false {
  let attempts = 0;
  const retry: RetryConfig = {};
  const others: string[] = [];
  doc.fields(o, path, {
    attempts: (n, np) => (attempts = doc.count(n, np)),
    perTryTimeout: (d, dp) => {
      others.push(dp);
      retry.perTryTimeoutMs = longest(doc.duration(d, dp), CAP.timeoutMs, doc, dp, 'a per-try timeout');
    },
    // Envoy's base interval; its maximum is 10 times that. Istio refuses one under 1 ms.
    backoff: (d, dp) => {
      others.push(dp);
      const baseMs = longest(istioDuration(d, doc, dp), CAP.backoffMs, doc, dp, 'a retry back-off');
      retry.backoff = { baseMs, maxMs: 10 * baseMs };
    },
    retryOn: (s, sp) => {
      others.push(sp);
      Object.assign(retry, retryOn(doc.str(s, sp), doc, sp));
    },
    retryRemoteLocalities: (b, bp) => {
      others.push(bp);
      if (doc.bool(b, bp)) doc.unsupported(bp, 'retries do not move away from the localities already tried');
    },
    // Istio's default, and meshlet's: a retry goes to another endpoint when there is one.
    retryIgnorePreviousHosts: (b, bp) => {
      if (!doc.bool(b, bp)) doc.unsupported(bp, 'a retry always goes to another endpoint when there is one');
    },
  });
  if (attempts === 0) {
    if (others.length > 0) doc.bad(others[0]!, 'retries with attempts unset or 0 are off (Istio refuses other retry settings with them)');
    return false;
  }
  if (attempts > 10) doc.unsupported(`${path}.attempts`, `meshlet retries at most 10 times: ${attempts} is applied as 10`);
  // No `budget`: Envoy's retry budget is the destination cluster's (a DestinationRule's
  // retryBudget), over every route's retries, so the route shares its service's.
  const { budget: _clusterBudget, ...defaults } = istioRetry();
  return { ...defaults, ...retry, attempts: Math.min(attempts, 10) };
}

/** `fault`: each of delay and abort only with a percentage above 0. */
export function fault(o: Obj, doc: Doc, path: string): FaultConfig {
  const out: FaultConfig = {};
  doc.fields(o, path, {
    delay: (d, dp) => {
      let percent = 0;
      let percentage: number | undefined;
      let ms: number | undefined;
      doc.fields(doc.obj(d, dp), dp, {
        fixedDelay: (x, xp) => (ms = longest(doc.duration(x, xp), CAP.faultDelayMs, doc, xp, 'a fault delay')),
        exponentialDelay: doc.reportAs('not supported (Istio does not apply it either)'),
        percentage: (x, xp) => (percentage = doc.percent(x, xp)),
        percent: (x, xp) => (percent = doc.percent(x, xp)), // deprecated: a whole percentage
      });
      const share = percentage ?? percent;
      if (ms !== undefined && share > 0) out.delay = { fixedDelayMs: ms, percent: share };
    },
    abort: (a, ap) => {
      let percent = 0;
      let status: number | undefined;
      doc.fields(doc.obj(a, ap), ap, {
        // Istio's validateHTTPStatus (pkg/config/validation/validation.go) lets 600 through, but
        // its message, and Envoy's abort (http_status: gte 200, lt 600), say 200 to 599.
        httpStatus: (x, xp) => (status = integerIn(x, 200, 599, doc, xp, 'an HTTP status', "Istio's validation and Envoy's fault filter")),
        grpcStatus: doc.reportAs('meshlet aborts with an HTTP status, not a gRPC one'),
        http2Error: doc.reportAs('not supported (Istio does not apply it either)'),
        percentage: (x, xp) => (percent = doc.percent(x, xp)),
      });
      if (status !== undefined && percent > 0) out.abort = { httpStatus: status, percent };
    },
  });
  return out;
}
