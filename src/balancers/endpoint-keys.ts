/**
 * The key a hash balancer places an endpoint under, and the order it builds in. Envoy hashes an
 * endpoint's `envoy.lb` `hash_key` metadata when it has one, else its address as
 * `ip:port` (`127.0.0.1:8080`, `[::1]:8080`); meshlet's {@link Endpoint.hashKey} is the same: the
 * endpoint's `hashKey`, else `hostname:port`.
 *
 * Envoy fills its Maglev table in key order, and so does meshlet. Envoy builds its ring in host
 * order, which is whatever order discovery delivered; meshlet sorts by key for the ring too, so
 * that every client builds the same ring however its discovery ordered the endpoints. The two
 * orders give the same ring whenever each endpoint's share is a whole number of points (equal
 * weights, for instance); otherwise a boundary point may sit with a neighbour.
 */
import type { Endpoint } from '../core/endpoint.js';

/** Each endpoint's hash key as UTF-8 bytes (what Envoy hashes: protobuf strings are UTF-8). */
export function keyBytes(endpoints: readonly Endpoint[]): Buffer[] {
  return endpoints.map((e) => Buffer.from(e.hashKey, 'utf8'));
}

/** Endpoint indices by key, bytewise as C++ compares strings; equal keys by address. */
export function keyOrder(endpoints: readonly Endpoint[], keys: readonly Buffer[]): number[] {
  return endpoints
    .map((_, i) => i)
    .sort((a, b) => Buffer.compare(keys[a]!, keys[b]!) || (endpoints[a]!.key < endpoints[b]!.key ? -1 : endpoints[a]!.key > endpoints[b]!.key ? 1 : 0));
}
