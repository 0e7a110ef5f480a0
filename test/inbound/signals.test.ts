// Opt-in SIGTERM handling (issue 14 §6), in a child process running the built package: SIGTERM
// starts the drain (readiness fails), the request in flight is answered with Connection: close,
// then the signal is raised again and ends the process as it would have without meshlet.
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { httpRequest } from '../support/http-client.js';

const dist = join(process.cwd(), 'dist', 'index.mjs');
let child: ChildProcess | null = null;
let dir: string | null = null;

afterEach(() => {
  child?.kill('SIGKILL');
  child = null;
  if (dir !== null) rmSync(dir, { recursive: true, force: true });
  dir = null;
});

const SCRIPT = `
import http from 'node:http';
import { createMesh } from ${JSON.stringify(dist)};
const mesh = createMesh({ services: {} });
let release;
const released = new Promise((resolve) => (release = resolve));
process.on('message', (m) => m === 'release' && release());
mesh.on('drain', (e) => process.send('drain:' + e.phase));
const server = http.createServer(mesh.inbound(async (req, res) => {
  if (req.url === '/hold') { process.send('held'); await released; }
  res.end('done');
}));
const probes = http.createServer(mesh.probes());
mesh.handleSignals({ servers: [server], graceMs: 20000 });
server.listen(0, '127.0.0.1', () => probes.listen(0, '127.0.0.1', () =>
  process.send({ port: server.address().port, probes: probes.address().port })));
`;

/** The next message from the child that `match` accepts. */
function message<T>(c: ChildProcess, match: (m: unknown) => m is T): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: unknown) => {
      if (!match(m)) return;
      c.off('message', onMessage);
      c.off('exit', onExit);
      resolve(m);
    };
    const onExit = (code: number | null, signal: string | null) => reject(new Error(`child exited (${code ?? signal}) before the message`));
    c.on('message', onMessage);
    c.once('exit', onExit);
  });
}

const is = (text: string) => (m: unknown): m is string => m === text;

test('SIGTERM drains: readiness fails, the request in flight finishes with Connection: close, then the signal ends the process', async () => {
  expect(existsSync(dist), 'dist/ is missing: run `npm test`, which builds before testing').toBe(true);
  dir = mkdtempSync(join(tmpdir(), 'meshlet-signals-'));
  const file = join(dir, 'server.mjs');
  writeFileSync(file, SCRIPT);
  const c = (child = fork(file, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => c.once('exit', (code, signal) => resolve({ code, signal })));
  const { port, probes } = await message(c, (m): m is { port: number; probes: number } => typeof m === 'object' && m !== null && 'port' in m);
  const agent = new http.Agent({ keepAlive: false });
  expect((await httpRequest(`http://127.0.0.1:${probes}/readyz`, { agent })).status).toBe(200);

  const held = httpRequest(`http://127.0.0.1:${port}/hold`, { agent });
  await message(c, is('held'));
  const started = message(c, is('drain:started'));
  c.kill('SIGTERM');
  await started;
  expect((await httpRequest(`http://127.0.0.1:${probes}/readyz`, { agent })).status).toBe(503);
  expect(c.exitCode).toBeNull(); // still serving the request in flight

  const closed = message(c, is('drain:closed'));
  c.send('release');
  const r = await held;
  expect([r.status, r.body, r.headers.connection]).toEqual([200, 'done', 'close']);
  await closed;
  expect(await exited).toEqual({ code: null, signal: 'SIGTERM' });
});
