/**
 * The ORCA load report an entry point puts on its responses, in the `endpoint-load-metrics`
 * header's TEXT form, as Envoy and meshlet's own balancers read it (load/orca.ts):
 *
 *   endpoint-load-metrics: TEXT cpu_utilization:0.31,rps_fractional:120.5,eps:0,
 *                          named_metrics.eventloop_utilization:0.42,named_metrics.rif:3
 *
 *  - `cpu_utilization` — the process's CPU time (`process.cpuUsage`, user + system) over the last
 *    window, as a share of the machine's cores (`os.availableParallelism()`): 0.5 on 2 cores is
 *    one core busy;
 *  - `application_utilization` — what the entry point's `applicationUtilization()` returns (≥ 0;
 *    balancers prefer it to cpu_utilization when > 0, gRPC A58), sampled with the rest;
 *  - `rps_fractional`, `eps` — responses, and error responses, per second over the window. An
 *    error (ORCA's eps, errors per second, which weighted round robin weighs against the
 *    endpoint) is a 5xx or a 429: an answer that turned the request away for the server's sake
 *    — the entry point's own 503 and 429 refusals included — not one about the request (4xx);
 *  - `named_metrics.eventloop_utilization` — the event loop's utilization over the window
 *    (`performance.eventLoopUtilization`): for Node often the truer load, since one busy loop
 *    saturates a single core;
 *  - `named_metrics.rif` — requests in flight in the process when the request arrived, besides
 *    itself (the name meshlet's balancers read, load/endpoint-load.ts `RIF_METRIC`).
 *
 * Everything but rif is sampled on a timer every `intervalMs` (unref'd: it keeps no process
 * alive) and formatted once per window; a response only appends its rif to the cached text.
 * Before the first window has passed, only rif is reported.
 */
import { availableParallelism } from 'node:os';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { messageOf } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { LOAD_METRICS_HEADER } from '../load/orca.js';
import { RIF_METRIC } from '../load/endpoint-load.js';

export { LOAD_METRICS_HEADER };

/** `loadReports` of an entry point, when given as an object. */
export interface LoadReportOptions {
  /** How often CPU, event-loop utilization and rates are sampled, ms (100 – 60 000). @default 1000 */
  intervalMs?: number;
  /** The application's own utilization, ≥ 0, sampled with the rest (`application_utilization`). */
  applicationUtilization?: () => number;
}

export interface ParsedLoadReports {
  readonly intervalMs: number;
  readonly applicationUtilization: (() => number) | null;
}

/** Rounded to 4 decimals: enough for a balancer, short on the wire. */
const fmt = (x: number): string => String(Math.round(x * 10_000) / 10_000);

export class LoadSampler {
  readonly #options: ParsedLoadReports;
  readonly #now: () => number;
  readonly #log: Logger;
  readonly #cores = Math.max(1, availableParallelism());
  readonly #timer: NodeJS.Timeout;
  #prefix = `TEXT named_metrics.${RIF_METRIC}:`;
  #atMs: number;
  #cpu: NodeJS.CpuUsage;
  #elu: EventLoopUtilization;
  #responses = 0;
  #errors = 0;
  #warned = false;

  constructor(options: ParsedLoadReports, deps: { now: () => number; log: Logger }) {
    this.#options = options;
    this.#now = deps.now;
    this.#log = deps.log;
    this.#atMs = deps.now();
    this.#cpu = process.cpuUsage();
    this.#elu = performance.eventLoopUtilization();
    this.#timer = setInterval(() => this.sample(), options.intervalMs);
    this.#timer.unref();
  }

  /** A response ended with `status` (a 5xx or a 429 is an error). */
  count(status: number): void {
    this.#responses++;
    if (status >= 500 || status === 429) this.#errors++;
  }

  /** The header value for a response when `others` other requests are in flight. */
  header(others: number): string {
    return this.#prefix + others;
  }

  /** Close the window now: measure, and format the text the next responses carry. */
  sample(): void {
    const now = this.#now();
    const wallMs = now - this.#atMs;
    if (!(wallMs > 0)) return;
    const cpu = process.cpuUsage(this.#cpu);
    const elu = performance.eventLoopUtilization(this.#elu);
    this.#atMs = now;
    this.#cpu = process.cpuUsage();
    this.#elu = performance.eventLoopUtilization();
    const perS = 1000 / wallMs;
    let text = `TEXT cpu_utilization:${fmt((cpu.user + cpu.system) / 1000 / wallMs / this.#cores)}`;
    const app = this.#application();
    if (app !== undefined) text += `,application_utilization:${fmt(app)}`;
    text += `,rps_fractional:${fmt(this.#responses * perS)},eps:${fmt(this.#errors * perS)}`;
    text += `,named_metrics.eventloop_utilization:${fmt(elu.utilization)},named_metrics.${RIF_METRIC}:`;
    this.#prefix = text;
    this.#responses = this.#errors = 0;
  }

  #application(): number | undefined {
    const fn = this.#options.applicationUtilization;
    if (fn === null) return undefined;
    let v: unknown;
    try {
      v = fn();
    } catch (err) {
      return this.#bad(`threw: ${messageOf(err)}`);
    }
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) return this.#bad(`returned ${String(v)}, not a finite number ≥ 0`);
    return v;
  }

  #bad(why: string): undefined {
    const line = `inbound: applicationUtilization() ${why}; application_utilization left out of the load report`;
    if (this.#warned) this.#log.debug(line);
    else {
      this.#warned = true;
      this.#log.warn(`${line} (later ones are logged at debug level)`);
    }
    return undefined;
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
