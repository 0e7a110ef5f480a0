// `passthroughDispatcher`: the caller's own undici Dispatcher for hosts that are not services.
import { afterEach, beforeEach, expect, test } from 'vitest';
import { Agent, request } from 'undici';
import { createMesh, InvalidConfigError } from '../../src/index.js';
import { startBackend, type Backend } from '../support/backend.js';

let other: Backend;

beforeEach(async () => {
  other = await startBackend('other');
});

afterEach(async () => {
  await other.close();
});

test('hosts that are not services pass through the given dispatcher, which mesh.close() leaves open', async () => {
  const agent = new Agent();
  const connections: string[] = [];
  agent.on('connect', (origin) => connections.push(String(origin)));
  const mesh = createMesh({ services: { orders: { endpoints: ['http://127.0.0.1:9'] } }, passthroughDispatcher: agent });
  try {
    const res = await request(`${other.url}/direct`, { dispatcher: mesh.dispatcher });
    expect(((await res.body.json()) as { backend: string }).backend).toBe('other');
    expect(connections).toEqual([`${other.url}/`]);
    await mesh.close();
    expect(agent.closed).toBe(false);
    expect(agent.destroyed).toBe(false);
    expect(mesh.toJSON()).not.toHaveProperty('passthroughDispatcher');
  } finally {
    await mesh.close();
    await agent.close();
  }
});

test('a passthroughDispatcher that is not a dispatcher is an InvalidConfigError naming the field', () => {
  for (const bad of [{}, 'agent', 42]) {
    const err = (() => {
      try {
        createMesh({ services: {}, passthroughDispatcher: bad as never });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(InvalidConfigError);
    expect((err as InvalidConfigError).path).toBe('passthroughDispatcher');
  }
});
