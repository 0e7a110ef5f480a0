/** Endpoint fixtures and picker helpers for balancer tests (no network: pickers never dispatch). */
import type { Dispatcher } from 'undici';
import { Endpoint } from '../../src/core/endpoint.js';
import { EndpointLoad, type ServiceLoad } from '../../src/load/endpoint-load.js';
import { parseEndpointSpec, type EndpointInput } from '../../src/core/endpoint-spec.js';
import { NoHealthyEndpointError } from '../../src/core/errors.js';
import type { BalancerDefinition, BalancerDeps, PickContext, Picker } from '../../src/balancers/balancer.js';

/** Endpoints `http://127.0.0.1:80`, `http://127.0.0.2:80`, … (past 253: `127.<hi>.<lo>.1`), with these weights. */
export function endpoints(weights: readonly number[], load: ServiceLoad = { inFlight: 0, recentLatency: true }): Endpoint[] {
  const url = (i: number): string => (i < 254 ? `http://127.0.0.${i + 1}:80` : `http://127.${(i >> 8) & 255}.${i & 255}.1:80`);
  return weights.map((w, i) => new Endpoint(parseEndpointSpec({ url: url(i), weight: w }, 't'), {} as Dispatcher, new EndpointLoad(10_000, load)));
}

/** Endpoints from URLs or specs, e.g. Envoy's test hosts `http://127.0.0.1:90` … `:95`. */
export function endpointsAt(inputs: readonly EndpointInput[], load: ServiceLoad = { inFlight: 0, recentLatency: true }): Endpoint[] {
  return inputs.map((input) => new Endpoint(parseEndpointSpec(input, 't'), {} as Dispatcher, new EndpointLoad(10_000, load)));
}

/** A pick context carrying a 64-bit request hash, as Envoy's tests give one. */
export function ctx64(hash: bigint, opts: { skip?: readonly Endpoint[]; attempt?: number } = {}): PickContext {
  const skip = new Set(opts.skip ?? []);
  return { hash: Number(hash >> 32n), hashLow: Number(hash & 0xffffffffn), attempt: opts.attempt ?? 0, skip: (e) => skip.has(e) };
}

export function deps(random: () => number, now: () => number = () => 0): BalancerDeps {
  return { service: 't', random, now, noEndpoint: { type: 'fail', error: new NoHealthyEndpointError('t', 'every endpoint was excluded') } };
}

export function build<O>(def: BalancerDefinition<O>, eps: readonly Endpoint[], d: BalancerDeps, raw: Record<string, unknown> = {}): Picker {
  const options = def.parseOptions ? def.parseOptions(raw, 'services.t.balancer') : (raw as O);
  return def.create(eps, options, d);
}

export function ctx(opts: { hash?: number; skip?: readonly Endpoint[]; attempt?: number } = {}): PickContext {
  const skip = new Set(opts.skip ?? []);
  return { hash: opts.hash, attempt: opts.attempt ?? 0, skip: (e) => skip.has(e) };
}

/** Pick `n` times; counts per endpoint index. */
export function counts(picker: Picker, eps: readonly Endpoint[], n: number, c: PickContext = ctx()): number[] {
  const out = eps.map(() => 0);
  for (let i = 0; i < n; i++) {
    const r = picker.pick(c);
    if (r.type !== 'pick') throw new Error('no endpoint picked');
    out[eps.indexOf(r.endpoint)]!++;
  }
  return out;
}
