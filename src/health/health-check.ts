/**
 * Active HTTP health checks: every `intervalMs` (plus jitter) each endpoint is asked for `path`
 * over a connection of its own for its checks (not its pool's: requests never wait behind a check),
 * with a timeout. `unhealthyThreshold` failures in a row mark it unhealthy (not picked);
 * `healthyThreshold` passes in a row bring it back. Every pass of a healthy endpoint is reported
 * too (`onPass`): it ends an outlier ejection (Envoy's
 * successful_active_health_check_uneject_host). A check is its whole answer, headers and body,
 * within `timeoutMs`: a body that stalls or is cut short fails it. Checks run beside the traffic: a
 * failing or slow check never blocks a request, and never throws into the process.
 */
import { clampDelay } from '../core/clock.js';
import type { Endpoint, HostPool } from '../core/endpoint.js';
import { errorLabel } from '../core/errors.js';
import type { ParsedHealthCheck } from './health-config.js';
import { errorKind } from './outcome.js';

/** Sent with every check; the Host is the service's (left to the pool when it writes that one). */
const CHECK_HEADERS = Object.freeze({ 'user-agent': 'meshlet-health-check' });

export interface CheckState {
  healthy: boolean;
  passes: number;
  fails: number;
  running: boolean;
  /**
   * The checks' own dispatcher (one connection, made on the first check, destroyed when the
   * endpoint leaves or the checker closes); null before, or for an endpoint that has none.
   */
  pool: HostPool | null;
}

export class HealthChecker {
  readonly #config: ParsedHealthCheck;
  readonly #host: string;
  readonly #random: () => number;
  readonly #onChange: (endpoint: Endpoint, healthy: boolean, detail: string) => void;
  readonly #onPass: (endpoint: Endpoint) => void;
  readonly #states = new Map<Endpoint, CheckState>();
  #timer: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(
    config: ParsedHealthCheck,
    host: string,
    random: () => number,
    onChange: (endpoint: Endpoint, healthy: boolean, detail: string) => void,
    onPass: (endpoint: Endpoint) => void,
  ) {
    this.#config = config;
    this.#host = host;
    this.#random = random;
    this.#onChange = onChange;
    this.#onPass = onPass;
    this.#schedule();
  }

  add(endpoint: Endpoint): CheckState {
    const state: CheckState = { healthy: true, passes: 0, fails: 0, running: false, pool: null };
    this.#states.set(endpoint, state);
    return state;
  }

  /** Stop checking `endpoint`: its checks' connection goes (a check in flight is cut, its answer dropped). */
  remove(endpoint: Endpoint): void {
    const state = this.#states.get(endpoint);
    this.#states.delete(endpoint);
    if (state?.pool) void destroy(state.pool);
  }

  #schedule(): void {
    if (this.#closed) return;
    const c = this.#config;
    // Within [intervalMs, intervalMs × (1 + jitter)] whatever the random source says.
    const delay = clampDelay(c.intervalMs * (1 + (this.#random() * c.jitterPercent) / 100), c.intervalMs, c.intervalMs * (1 + c.jitterPercent / 100));
    this.#timer = setTimeout(() => {
      for (const [ep, state] of this.#states) if (!state.running) void this.#check(ep, state);
      this.#schedule();
    }, delay);
    this.#timer.unref?.();
  }

  async #check(ep: Endpoint, state: CheckState): Promise<void> {
    const c = this.#config;
    state.running = true;
    let ok = false;
    let detail: string;
    let status = 0;
    try {
      // The checks' own connection, never the traffic's: a check that hangs delays no request.
      const pool = (state.pool ??= ep.checkPool(this.#host)) ?? ep.poolFor(this.#host);
      const res = await pool.dispatcher.request({
        origin: ep.key,
        path: c.path,
        method: 'GET',
        headers: pool.host === this.#host ? CHECK_HEADERS : { host: this.#host, ...CHECK_HEADERS },
        signal: AbortSignal.timeout(c.timeoutMs),
        headersTimeout: c.timeoutMs,
        bodyTimeout: c.timeoutMs,
      });
      status = res.statusCode;
      // A check is its whole answer: the body is read to its end within the same timeout (the
      // signal's), chunk by chunk and dropped — never buffered. A body that stalls, is cut short or
      // is reset fails the check, as such a response fails a request (a reset). dump() would not
      // tell: it resolves once the body closes, after an error too.
      for await (const chunk of res.body) void chunk;
      ok = status >= c.expected[0] && status <= c.expected[1];
      detail = `status ${status}`;
    } catch (err) {
      detail = failureDetail(err, c.timeoutMs, status);
    }
    state.running = false;
    if (this.#closed || !this.#states.has(ep)) return;
    if (ok) {
      state.fails = 0;
      state.passes++;
      if (!state.healthy && state.passes >= c.healthyThreshold) {
        state.healthy = true;
        this.#onChange(ep, true, detail);
      }
      if (state.healthy) this.#onPass(ep);
    } else {
      state.passes = 0;
      state.fails++;
      if (state.healthy && state.fails >= c.unhealthyThreshold) {
        state.healthy = false;
        this.#onChange(ep, false, detail);
      }
    }
  }

  /** Stop checking; resolves once the checks' connections are gone. */
  close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    const pools: Promise<void>[] = [];
    for (const state of this.#states.values()) if (state.pool) pools.push(destroy(state.pool));
    return Promise.all(pools).then(() => {});
  }
}

/** Destroy a check's dispatcher (a check in flight on it fails, and is dropped); never rejects. */
function destroy(pool: HostPool): Promise<void> {
  return pool.dispatcher.destroy().catch(() => {});
}

/**
 * A failed check's `detail`, always a string: 'timeout after N ms', else the error's code
 * (ECONNREFUSED) or name — after `status N, body failed: ` when the status had come (the body was
 * cut short or reset: `status 200, body failed: UND_ERR_SOCKET`). A check times out by its
 * AbortSignal.timeout (a DOMException TimeoutError, whose legacy numeric code, 23, once became
 * the detail) or by undici's header or body timeout (UND_ERR_HEADERS_TIMEOUT), whichever fires
 * first, before the headers or in the body: all read the same.
 */
function failureDetail(err: unknown, timeoutMs: number, status: number): string {
  if ((err as { name?: unknown } | null)?.name === 'TimeoutError' || errorKind(err) === 'timeout') return `timeout after ${timeoutMs} ms`;
  return status === 0 ? errorLabel(err) : `status ${status}, body failed: ${errorLabel(err)}`;
}
