/**
 * The inbound-context layer: a call made while the process serves a request (inbound/ keeps that
 * request's context, request/inbound-context.ts) inherits the caller's deadline and headers.
 *
 *  - Deadline: the call's time limit becomes `min(its own, what is left of the caller's)` — the
 *    deadline layer's own timeout arms later and the earlier one holds (Call.setDeadline). When
 *    nothing is left the call fails with DEADLINE_EXCEEDED at once, without sending, as gRPC
 *    fails a call whose deadline has passed.
 *  - Headers: the context's headers (trace context, `x-request-id`, configured ones) are added
 *    where the call does not carry them already; what the caller set is never replaced.
 *
 * First on the request path, so that routes can match a propagated header (`end-user`, say).
 * Always on: without a context it costs a property look-up, or one `AsyncLocalStorage.getStore()`
 * once an inbound entry point exists in the process (bench/inbound.mjs).
 */
import { DeadlineExceededError } from '../core/errors.js';
import { withMissingHeaders } from '../core/headers.js';
import { currentInbound } from '../request/inbound-context.js';
import type { Call } from '../request/call.js';
import type { Layer, Next } from '../request/layer.js';

export class InboundContextLayer implements Layer {
  readonly name = 'inbound-context';
  readonly #service: string;

  constructor(service: string) {
    this.#service = service;
  }

  handle(call: Call, next: Next): void {
    const ctx = currentInbound();
    if (ctx !== undefined) {
      const leftMs = ctx.deadlineAtMs - ctx.now();
      if (leftMs <= 0) return call.fail(new DeadlineExceededError(this.#service, false));
      if (leftMs !== Infinity) {
        call.setDeadline(leftMs, () => new DeadlineExceededError(this.#service, true, { attempts: call.attempt + 1, endpoint: call.endpoint }));
      }
      const add = ctx.outgoingHeaders();
      if (add.length > 0) {
        const headers = withMissingHeaders(call.opts.headers, add);
        if (headers !== call.opts.headers) call.opts = { ...call.opts, headers };
      }
    }
    next(call);
  }
}
