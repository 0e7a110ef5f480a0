// The in-process socket pair under the mesh agent: bytes both ways, back-pressure, FIN and reset
// semantics, and an inactivity timeout (on fake timers).
import { once } from 'node:events';
import { afterEach, expect, test, vi } from 'vitest';
import { socketPair } from '../../src/agent/socket-pair.js';

afterEach(() => {
  vi.useRealTimers();
});

test('what one end writes the other reads, in order', async () => {
  const [a, b] = socketPair();
  const got: string[] = [];
  b.on('data', (d: Buffer) => got.push(d.toString()));
  a.write('he');
  a.cork();
  a.write('ll');
  a.write('o');
  a.uncork(); // a corked batch arrives through _writev
  a.end();
  await once(b, 'end');
  expect(got.join('')).toBe('hello');
});

test('a reader that does not read holds the writer back; reading releases it', async () => {
  const [a, b] = socketPair();
  const chunk = Buffer.alloc(16 * 1024);
  let writes = 0;
  while (a.write(chunk) && writes < 1000) writes++;
  expect(writes).toBeLessThan(10); // stopped by the peer's buffer, not by the bound
  const drained = once(a, 'drain');
  b.resume();
  await drained;
});

test('end() on both sides closes both; neither allows a half-open connection', async () => {
  const [a, b] = socketPair();
  b.resume();
  a.resume();
  const closed = Promise.all([once(a, 'close'), once(b, 'close')]);
  a.end();
  await closed;
  expect(a.destroyed && b.destroyed).toBe(true);
});

test('destroy(err) is a reset: err goes to this side only, the peer is closed without an error', async () => {
  const [a, b] = socketPair();
  const errors: unknown[] = [];
  b.on('error', (e) => errors.push(e));
  const boom = new Error('boom');
  const aError = once(a, 'error');
  const bClosed = once(b, 'close');
  a.destroy(boom);
  expect((await aError)[0]).toBe(boom);
  await bClosed;
  expect(errors).toEqual([]);
  expect(a.peer).toBeNull();
  expect(b.peer).toBeNull();
  // Writing to a reset connection fails.
  const late = await new Promise<Error | null | undefined>((r) => b.write('x', r));
  expect(late).toBeInstanceOf(Error);
});

test("setTimeout emits 'timeout' after that long without traffic; traffic and 0 put it off", () => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  const [a, b] = socketPair();
  b.resume();
  let timeouts = 0;
  a.setTimeout(1_000, () => timeouts++);
  vi.advanceTimersByTime(900);
  a.write('x'); // activity restarts the clock
  vi.advanceTimersByTime(900);
  expect(timeouts).toBe(0);
  vi.advanceTimersByTime(100);
  expect(timeouts).toBe(1);
  a.on('timeout', () => timeouts++);
  a.setTimeout(500);
  a.setTimeout(0); // off
  vi.advanceTimersByTime(5_000);
  expect(timeouts).toBe(1);
  expect(a.timeout).toBe(0);
  a.destroy();
});

test('the socket methods node:http calls exist and return the socket', () => {
  const [a] = socketPair();
  expect([a.setKeepAlive(), a.setNoDelay(), a.ref(), a.unref()]).toEqual([a, a, a, a]);
  expect(a.address()).toEqual({});
  expect(a.connecting).toBe(false);
  a.destroy();
});
