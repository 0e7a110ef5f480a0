/**
 * The load reports a service's endpoints send (ORCA headers, load/orca.ts), read from response
 * headers into each endpoint's load — only for a service one of whose balancers reads them. An
 * invalid report is ignored and counted (stats `invalidLoadReports`), warned about once per
 * endpoint.
 */
import type { Endpoint } from '../core/endpoint.js';
import type { Logger } from '../core/log.js';
import { LoadReportReader } from '../load/orca.js';

export class ServiceLoadReports {
  readonly #service: string;
  readonly #log: Logger;
  readonly #reader = new LoadReportReader();

  constructor(service: string, log: Logger) {
    this.#service = service;
    this.#log = log;
  }

  /** A response from `endpoint` with `headers` arrived at `nowMs`, to a request sent with `sentRif` others in flight there. */
  read(endpoint: Endpoint, headers: Record<string, string | string[] | undefined>, nowMs: number, sentRif: number): void {
    const r = this.#reader.read(headers);
    if (r === null) return;
    const load = endpoint.load;
    if (r.type === 'report') return load.report(r.report, nowMs, sentRif);
    const line = `service ${this.#service}: endpoint ${endpoint.key} sent an invalid load report, ignored: ${r.reason}`;
    if (load.invalidReports++ === 0) this.#log.warn(`${line} (later ones are only counted: stats invalidLoadReports)`);
    else this.#log.debug(line);
  }
}
