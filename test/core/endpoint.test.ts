// Endpoint's pools (core/endpoint.ts): the first is made on first use; with a maker that keeps one
// per Host, further Hosts get their own — at most MAX_HOST_POOLS, none once the endpoint is closing
// — and close/destroy reach every pool made. Real undici Pools, never connected.
import { expect, test } from 'vitest';
import { Pool } from 'undici';
import { Endpoint, MAX_HOST_POOLS, type HostPool, type PoolMaker } from '../../src/core/endpoint.js';
import { parseEndpointSpec } from '../../src/core/endpoint-spec.js';

function maker(perHost: boolean): PoolMaker & { made: HostPool[] } {
  const made: HostPool[] = [];
  const make = (host: string): HostPool => {
    const p = { dispatcher: new Pool(`https://${host}`), host };
    made.push(p);
    return p;
  };
  return { perHost, made, primary: () => make('orders'), forHost: (_ep, host) => (host === 'not-a-url-host' ? null : make(host)), forChecks: () => null, forMirrors: () => null };
}

const spec = parseEndpointSpec('https://127.0.0.7:8443', 'endpoints[0]');

test('the first pool is made on first use and serves its own Host', () => {
  const m = maker(true);
  const ep = new Endpoint(spec, m);
  expect(m.made).toHaveLength(0);
  expect(ep.authority).toBe('127.0.0.7:8443');
  const first = ep.poolFor('orders');
  expect(first.host).toBe('orders');
  expect(ep.dispatcher).toBe(first.dispatcher);
  expect(ep.poolFor('orders')).toBe(first);
  expect(m.made).toHaveLength(1);
});

test('without per-Host pools every Host goes on the first pool', () => {
  const m = maker(false);
  const ep = new Endpoint(spec, m);
  const first = ep.poolFor('orders');
  expect(ep.poolFor('other.example')).toBe(first);
  expect(m.made).toHaveLength(1);
});

test(`per Host: one pool each, kept; at most ${MAX_HOST_POOLS} besides the first, then the first; a Host the maker refuses goes on the first`, async () => {
  const m = maker(true);
  const ep = new Endpoint(spec, m);
  const first = ep.poolFor('orders');
  const a = ep.poolFor('a.example');
  expect(a.host).toBe('a.example');
  expect(ep.poolFor('a.example')).toBe(a);
  expect(ep.poolFor('not-a-url-host')).toBe(first);
  for (let i = 1; i < MAX_HOST_POOLS; i++) expect(ep.poolFor(`h${i}.example`).host).toBe(`h${i}.example`);
  expect(ep.poolFor('one-too-many.example')).toBe(first);
  expect(m.made).toHaveLength(1 + MAX_HOST_POOLS);
  await ep.close();
  expect(m.made.every((p) => (p.dispatcher as Pool).closed)).toBe(true);
});

test('once closing, no pool is made for a new Host (it would never be closed); destroy reaches every pool', async () => {
  const m = maker(true);
  const ep = new Endpoint(spec, m);
  const first = ep.poolFor('orders');
  ep.poolFor('a.example');
  const closing = ep.destroy();
  expect(ep.poolFor('b.example')).toBe(first);
  await closing;
  expect(m.made).toHaveLength(2);
  expect(m.made.every((p) => (p.dispatcher as Pool).destroyed)).toBe(true);
});

test('a dispatcher given as such (custom use) serves every Host, writing the endpoint\'s address', async () => {
  const pool = new Pool('https://127.0.0.7:8443');
  const ep = new Endpoint(spec, pool);
  expect(ep.poolFor('orders')).toEqual({ dispatcher: pool, host: '127.0.0.7:8443' });
  await ep.close();
  expect(pool.closed).toBe(true);
});
