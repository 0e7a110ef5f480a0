/**
 * The end of the pipeline: pick an endpoint for the call's current attempt and send it.
 *
 * The target's picker is an immutable snapshot built when endpoints or their health changed; the
 * health filter (`admit`) then decides per pick — a half-open circuit lets exactly one probe
 * through, slow start sheds a share of a new endpoint's picks — and so does the endpoint's own
 * rate limit when one is set (a half-open trial its rate limit refused is given back, not lost).
 * A refused endpoint is excluded and the pick repeats, a bounded number of times; a retry with no
 * untried endpoint left may go back to one already tried. A request no endpoint took fails with
 * RATE_LIMITED when some endpoint's rate limit refused it, else CIRCUIT_OPEN — unless it is a
 * retry (`call.retrying`): that goes back to the retry layer, and the caller gets the response
 * (or error) it would have retried, as when `limits.maxRetries` refuses a retry.
 * A shed endpoint is excluded too, but kept: when no other endpoint takes the request, the first
 * one shed does (or, if its own rate limit refuses, the next one shed). Slow start only moves
 * picks to the other endpoints, as Envoy's re-weighting does; a new endpoint alone (a one-replica
 * deployment restarted) takes every request rather than failing most of them with CIRCUIT_OPEN.
 * A hedge (`call.hedging`) only goes to an untried endpoint — a copy on the per-try timeout
 * (`'any'`) to a tried one when none is left, as a retry — and when there is none it sends
 * nothing and fails nothing: the copies already in flight go on. It takes no shed endpoint:
 * a copy is extra load, which slow start is there to keep off a new endpoint.
 */
import { CircuitOpenError, MeshClosedError, NoHealthyEndpointError, RateLimitedError } from '../core/errors.js';
import type { Endpoint } from '../core/endpoint.js';
import type { Admission } from '../health/endpoint-health.js';
import type { PickFailed, PickResult } from '../balancers/balancer.js';
import { Attempt } from '../request/attempt.js';
import type { Call } from '../request/call.js';
import type { Next } from '../request/layer.js';
import type { Target } from '../routing/target.js';

/** What picking needs from its service. */
export interface PickDeps {
  readonly service: string;
  /** Endpoints of the service now (for the failure's reason and the loop's bound). */
  readonly endpointCount: () => number;
  /** The health filter: may `endpoint`, picked by `target`'s picker, take this request now (`shed`: only if no other will)? */
  readonly admit: (endpoint: Endpoint, target: Target) => Admission;
  /** An admitted endpoint was not sent the request after all: a half-open circuit's trial is given back. */
  readonly unadmit: (endpoint: Endpoint) => void;
  /** The endpoint's own rate limit, when one is configured. */
  readonly endpointRate: ((endpoint: Endpoint) => boolean) | null;
  /** A refusal by every endpoint's rate limit. */
  readonly rateLimited: (call: Call, scope: string) => void;
  /** The same refusal of a retry, handed back: counted and announced, failing nothing. */
  readonly retryRateLimited: (scope: string) => void;
  /** True once the service was cut off (close's grace ran out): nothing may be sent. */
  readonly cut: () => boolean;
}

export function pickAndSend(deps: PickDeps): Next {
  const { admit, unadmit, endpointRate } = deps;
  return (call: Call): void => {
    if (call.hedging) return hedge(call);
    if (deps.cut()) return call.fail(new MeshClosedError());
    call.nowMs = call.attemptStartMs();
    const target = call.target;
    const picker = target.picker;
    const count = deps.endpointCount();
    if (picker === null) {
      // Endpoints exist but none may take traffic (ejected, unhealthy; panic off).
      if (count > 0 && target.size > 0) return unsent(call, new CircuitOpenError(deps.service));
      const why = count === 0 ? 'discovery reports no endpoints' : `subset "${target.subset}" has no endpoint`;
      return unsent(call, new NoHealthyEndpointError(deps.service, why));
    }
    let refusedByHealth = 0;
    let refusedByRate = 0;
    let shed: Endpoint | null = null; // the first endpoint slow start shed: the fallback
    let moreShed: Endpoint[] | null = null; // the others, kept only when an endpoint's rate limit may refuse the first
    let none: Error | null = null; // the picker's own answer when it had nothing left
    for (let guard = 0; guard <= count + 1; guard++) {
      const result = picker.pick(call);
      if (result.type !== 'pick') {
        if (call.attempt > 0 && refusedByHealth + refusedByRate === 0 && guard === 0) {
          call.resetExcluded();
          continue;
        }
        none = failureOf(result, call);
        break;
      }
      const ep = result.endpoint;
      const admission = admit(ep, target);
      if (admission !== 'admitted') {
        if (admission !== 'shed') refusedByHealth++;
        else if (shed === null) shed = ep;
        else if (endpointRate !== null) (moreShed ??= []).push(ep);
        call.exclude(ep);
        continue;
      }
      if (endpointRate !== null && !endpointRate(ep)) {
        unadmit(ep);
        refusedByRate++;
        call.exclude(ep);
        continue;
      }
      return new Attempt(call, ep).send();
    }
    // No endpoint admitted the request: slow start's fallback takes it, else say why.
    if (shed !== null) {
      if (endpointRate === null || endpointRate(shed)) return new Attempt(call, shed).send();
      refusedByRate++;
      for (const ep of moreShed ?? []) {
        if (endpointRate(ep)) return new Attempt(call, ep).send();
        refusedByRate++;
      }
    }
    if (none === null) return unsent(call, new NoHealthyEndpointError(deps.service, 'no endpoint could be picked'));
    // Some endpoint would have taken it but for its rate limit: that, not every circuit being open.
    if (refusedByRate > 0) return unsent(call, null);
    unsent(call, refusedByHealth > 0 ? new CircuitOpenError(deps.service) : none);
  };

  /**
   * No endpoint took the request: fail it with `error` (null: every endpoint's rate limit refused
   * it) — or, for a retry the retry layer can hand back, end it with what was retried.
   */
  function unsent(call: Call, error: Error | null): void {
    const retry = call.retrying;
    if (retry !== null && retry.canHandBack) {
      if (error === null) deps.retryRateLimited('every endpoint');
      return retry.handBack();
    }
    if (error === null) deps.rateLimited(call, 'every endpoint');
    else call.fail(error);
  }

  function hedge(call: Call): void {
    const picker = call.target.picker;
    if (picker !== null && !deps.cut()) {
      call.nowMs = call.attemptStartMs();
      for (let guard = 0, count = deps.endpointCount(); guard <= count + 1; guard++) {
        const result = picker.pick(call);
        if (result.type !== 'pick') {
          failureOf(result, call); // a malformed answer throws (LAYER_FAILED) here too
          if (guard === 0 && call.hedging === 'any') {
            call.resetExcluded(); // every endpoint was tried: as a retry, go back to one
            continue;
          }
          break;
        }
        const ep = result.endpoint;
        if (admit(ep, call.target) === 'admitted') {
          if (endpointRate === null || endpointRate(ep)) return new Attempt(call, ep).send();
          unadmit(ep);
        }
        call.exclude(ep);
      }
    }
    call.hedging = false; // nothing sent
  }
}

/**
 * The error of a picker's answer that is not a pick: a `{ type: 'fail', error }` result's error.
 * Anything else — an endpoint returned bare (not its `.picked`), a Promise, a fail result without
 * an Error — is the balancer breaking its contract: thrown, so the call ends with LAYER_FAILED
 * naming it, as a pick that throws does (an answer with no error would end the call with none).
 */
function failureOf(result: PickResult, call: Call): Error {
  const r = result as unknown;
  if (typeof r === 'object' && r !== null && (r as PickResult).type === 'fail' && (r as PickFailed).error instanceof Error) return (r as PickFailed).error;
  const what = r instanceof Promise ? 'a Promise (pick must answer synchronously)' : r === null ? 'null' : typeof r === 'object' ? ((r as { type?: unknown }).type === 'fail' ? 'a fail result whose error is not an Error' : 'an object that is not a pick result') : typeof r;
  throw new TypeError(`balancer "${call.target.balancer.name}" returned ${what} from pick; expected endpoint.picked, or { type: 'fail', error } (e.g. deps.noEndpoint)`);
}
