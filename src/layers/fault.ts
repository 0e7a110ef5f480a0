/**
 * The fault layer (Istio's HTTPFaultInjection): a route may delay a share of its requests by a
 * fixed time, and answer a share with an HTTP status without sending anything upstream. As in
 * Envoy's fault filter, the two are independent: the delay is judged first, and after it (or at
 * once, when not delayed) the abort; a request that is not aborted goes on through the rest of
 * the pipeline (the delay's timer keeps the process alive while it waits). On only when some route
 * has a fault.
 */
import { InvalidConfigError } from '../core/errors.js';
import { expectObject, join, optNumber, rejectUnknown, type Raw } from '../config/check.js';
import { optDurationMs, type Duration } from '../config/duration.js';
import type { Call } from '../request/call.js';
import type { Layer, Next } from '../request/layer.js';

export interface FaultConfig {
  /** Delay `percent` % of requests (default 100) by `fixedDelayMs`. */
  delay?: { fixedDelayMs: Duration; percent?: number };
  /** Answer `percent` % of requests (default 100) with `httpStatus`. */
  abort?: { httpStatus: number; percent?: number };
}

export interface ParsedFault {
  readonly delay: { readonly ms: number; readonly percent: number } | null;
  readonly abort: { readonly status: number; readonly percent: number } | null;
}

export function percentOf(o: Raw, path: string): number {
  return optNumber(o, 'percent', path, 100, { min: 0, max: 100 });
}

export function parseFault(raw: unknown, path: string): ParsedFault {
  if (raw === undefined) return { delay: null, abort: null };
  const f = expectObject(raw, path);
  rejectUnknown(f, ['delay', 'abort'], path);
  let delay: ParsedFault['delay'] = null;
  let abort: ParsedFault['abort'] = null;
  if (f.delay !== undefined) {
    const dp = join(path, 'delay');
    const d = expectObject(f.delay, dp);
    rejectUnknown(d, ['fixedDelayMs', 'percent'], dp);
    if (d.fixedDelayMs === undefined) throw new InvalidConfigError(join(dp, 'fixedDelayMs'), 'required');
    delay = { ms: optDurationMs(d, 'fixedDelayMs', dp, 0, { min: 0, max: 3_600_000 }), percent: percentOf(d, dp) };
  }
  if (f.abort !== undefined) {
    const ap = join(path, 'abort');
    const a = expectObject(f.abort, ap);
    rejectUnknown(a, ['httpStatus', 'percent'], ap);
    if (a.httpStatus === undefined) throw new InvalidConfigError(join(ap, 'httpStatus'), 'required');
    abort = { status: optNumber(a, 'httpStatus', ap, 0, { integer: true, min: 200, max: 599 }), percent: percentOf(a, ap) };
  }
  return { delay, abort };
}

export class FaultLayer implements Layer {
  readonly name = 'fault';
  readonly #byRoute: readonly ParsedFault[];
  readonly #random: () => number;

  constructor(byRoute: readonly ParsedFault[], random: () => number) {
    this.#byRoute = byRoute;
    this.#random = random;
  }

  static needed(byRoute: readonly ParsedFault[]): boolean {
    return byRoute.some((f) => f.delay !== null || f.abort !== null);
  }

  handle(call: Call, next: Next): void {
    const f = call.routeIndex >= 0 ? this.#byRoute[call.routeIndex] : undefined;
    if (f === undefined) return next(call);
    const then = (): void => {
      if (f.abort !== null && this.#random() * 100 < f.abort.percent) call.respond(f.abort.status, 'fault filter abort');
      else next(call);
    };
    if (f.delay !== null && this.#random() * 100 < f.delay.percent) call.wait(f.delay.ms, then);
    else then();
  }
}
