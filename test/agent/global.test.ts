// mesh.installGlobalAgent(): the mesh's agent becomes http.globalAgent, so node:http calls
// without an agent of their own — http.get, axios and got with their defaults — reach services
// through the mesh; the returned function restores the previous agent (called in teardown).
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import axios from 'axios';
import got from 'got';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { createMesh, MeshAgent, type Mesh } from '../../src/index.js';
import { closeAll, startBackend, startBackends, type Backend } from '../support/backend.js';
import { httpRequest } from '../support/http-client.js';

let backends: Backend[];
let mesh: Mesh;
let restore: (() => void) | null = null;
const original = http.globalAgent;

beforeEach(async () => {
  backends = await startBackends(2);
  mesh = createMesh({ services: { orders: { endpoints: backends.map((b) => b.url), balancer: 'round-robin' } } });
});

afterEach(async () => {
  restore?.();
  restore = null;
  expect(http.globalAgent).toBe(original);
  await mesh.close();
  await closeAll(backends);
});

test('http.get without an agent, axios and got with their defaults go through the mesh', async () => {
  restore = mesh.installGlobalAgent();
  expect(http.globalAgent).toBeInstanceOf(MeshAgent);
  const plain = await httpRequest('http://orders/plain');
  expect(plain.socket).not.toBeInstanceOf(net.Socket);
  const viaAxios = await axios.get<{ host: string }>('http://orders/axios', { proxy: false });
  const viaGot = await got.get('http://orders/got').json<{ host: string }>();
  expect([JSON.parse(plain.body).host, viaAxios.data.host, viaGot.host]).toEqual(['orders', 'orders', 'orders']);
  expect(backends.map((b) => b.received.length).sort()).toEqual([1, 2]);
});

test('other hosts keep working through the installed agent; https.globalAgent is left alone', async () => {
  const httpsAgent = https.globalAgent;
  restore = mesh.installGlobalAgent();
  expect(https.globalAgent).toBe(httpsAgent);
  const other = await startBackend('other');
  try {
    const res = await httpRequest(`${other.url}/direct`);
    expect(JSON.parse(res.body)).toMatchObject({ backend: 'other' });
    expect(res.socket).toBeInstanceOf(net.Socket);
  } finally {
    await other.close();
  }
});

test('restore puts the previous agent back, once; restoring out of order does not undo a later install', () => {
  const first = mesh.installGlobalAgent();
  expect(http.globalAgent).not.toBe(original);
  first();
  expect(http.globalAgent).toBe(original);
  first(); // harmless
  expect(http.globalAgent).toBe(original);

  const outer = mesh.installGlobalAgent();
  const outerAgent = http.globalAgent;
  const inner = mesh.installGlobalAgent();
  const innerAgent = http.globalAgent;
  outer(); // the global agent is inner's now: left as it is
  expect(http.globalAgent).toBe(innerAgent);
  inner(); // puts back what it found
  expect(http.globalAgent).toBe(outerAgent);
  http.globalAgent = original;
});
