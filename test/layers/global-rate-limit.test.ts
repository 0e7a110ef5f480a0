// The shared (Redis) rate limit, against a real redis-server started here on a unix socket.
// Skipped, with the reason, where redis-server is not installed (Debian package: redis-server).
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, onTestFinished, test, vi } from 'vitest';
import { request } from 'undici';
import { createMesh } from '../../src/index.js';
import { closeAll, startBackends, type Backend } from '../support/backend.js';

const hasRedis = spawnSync('redis-server', ['--version']).status === 0;
if (!hasRedis) console.warn('skipping the global rate-limit tests: redis-server is not installed (apt-get install redis-server)');

let dir: string;
let socket: string;
let redis: ChildProcess | null = null;
let backends: Backend[];

const root = resolve(__dirname, '../..');
const dist = join(root, 'dist'); // built by `npm test`'s pretest

/** Run a script with the Node this suite runs on, from `cwd` (asynchronously: the backends live in this process). */
function runNode(file: string, cwd: string): Promise<string> {
  return new Promise((done) => {
    execFile(process.execPath, [file], { cwd, encoding: 'utf8', timeout: 15_000 }, (_err, stdout, stderr) => done(`${stdout}${stderr}`));
  });
}

/** Start redis-server and wait for its own word that it accepts connections (or for it to exit). */
async function startRedis(): Promise<void> {
  const r = spawn('redis-server', ['--port', '0', '--unixsocket', socket, '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'inherit'] });
  redis = r;
  await new Promise<void>((resolve, reject) => {
    let log = '';
    const onData = (chunk: Buffer): void => {
      log += chunk.toString();
      if (/ready to accept connections/i.test(log)) {
        r.stdout!.off('data', onData).resume(); // keep draining its log
        r.off('exit', onExit);
        resolve();
      }
    };
    const onExit = (code: number | null): void => reject(new Error(`redis-server exited (${code}) before it was ready:\n${log}`));
    r.stdout!.on('data', onData);
    r.once('exit', onExit);
    r.once('error', reject);
  });
}

async function stopRedis(): Promise<void> {
  if (!redis) return;
  const p = new Promise((r) => redis!.once('exit', r));
  redis.kill('SIGTERM');
  await p;
  redis = null;
}

/** A logger that keeps its warnings, and `warned(re)`: resolves once one matching `re` was logged (bounded by the test's timeout). */
function recordingLogger() {
  const warnings: string[] = [];
  const waiters: { re: RegExp; resolve: () => void }[] = [];
  const logger = {
    debug: () => {},
    warn: (line: string) => {
      warnings.push(line);
      for (const w of waiters.splice(0)) if (w.re.test(line)) w.resolve();
      else waiters.push(w);
    },
  };
  const warned = (re: RegExp): Promise<void> =>
    warnings.some((l) => re.test(l)) ? Promise.resolve() : new Promise((resolve) => waiters.push({ re, resolve }));
  return { warnings, logger, warned };
}

const unreachable = /global rate limit: Redis unreachable/;
const back = /global rate limit: Redis reachable again/;

/**
 * Run `body` with redis-server stopped (SIGSTOP: its connections stay open, nothing answers). It
 * gets SIGCONT back when `body` settles, and when the test ends (a test that timed out included).
 */
async function whileStopped<T>(body: () => Promise<T>): Promise<T> {
  const pid = redis!.pid!;
  onTestFinished(() => void process.kill(pid, 'SIGCONT'));
  process.kill(pid, 'SIGSTOP');
  try {
    return await body();
  } finally {
    process.kill(pid, 'SIGCONT');
  }
}

describe.skipIf(!hasRedis)('global rate limit through Redis', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshlet-redis-'));
    socket = join(dir, 'redis.sock');
    await startRedis();
    backends = await startBackends(1);
  });

  afterAll(async () => {
    await stopRedis();
    await closeAll(backends ?? []);
    rmSync(dir, { recursive: true, force: true });
  });

  const status = (m: ReturnType<typeof createMesh>) =>
    request('http://api/x', { dispatcher: m.dispatcher }).then(
      async (r) => {
        await r.body.dump();
        return r.statusCode;
      },
      (e: { code?: string }) => e.code ?? 'error',
    );

  test('two meshes (as two processes would) share one budget', async () => {
    const keyPrefix = `t${Date.now()}`;
    const config = () => ({
      services: {
        api: { endpoints: [backends[0]!.url], rateLimit: { global: { redis: socket, requestsPerSecond: 10, keyPrefix } } },
      },
    });
    const a = createMesh(config());
    const b = createMesh(config());
    try {
      // Warm both connections (the first request waits for the limiter to connect).
      const results: (number | string)[] = [];
      for (let i = 0; i < 15; i++) results.push(await status(i % 2 ? a : b));
      expect(results.filter((r) => r === 200)).toHaveLength(10);
      expect(results.filter((r) => r === 'RATE_LIMITED')).toHaveLength(5);
      expect(a.stats().services.api!.rateLimited + b.stats().services.api!.rateLimited).toBe(5);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  test('wait mode waits for the next window instead of refusing', async () => {
    const m = createMesh({
      services: {
        api: {
          endpoints: [backends[0]!.url],
          rateLimit: { mode: 'wait', maxWaitMs: 2_000, global: { redis: socket, requestsPerSecond: 2, keyPrefix: `w${Date.now()}` } },
        },
      },
    });
    try {
      const results = await Promise.all([status(m), status(m), status(m)]);
      expect(results).toEqual([200, 200, 200]);
    } finally {
      await m.close();
    }
  });

  test('while Redis is down, the per-process fallback limit applies, and says so through the logger only', async () => {
    await stopRedis();
    const warnings: string[] = [];
    // ioredis prints an 'error' nobody listens for to console.error itself: meshlet listens from the start.
    const printed = vi.spyOn(console, 'error');
    const m = createMesh({
      logger: { debug: () => {}, warn: (line: string) => void warnings.push(line) },
      services: {
        api: {
          endpoints: [backends[0]!.url],
          rateLimit: { global: { redis: socket, requestsPerSecond: 100, fallbackRequestsPerSecond: 3 } },
        },
      },
    });
    try {
      const results: (number | string)[] = [];
      for (let i = 0; i < 5; i++) results.push(await status(m));
      expect(results).toEqual([200, 200, 200, 'RATE_LIMITED', 'RATE_LIMITED']);
      expect(printed.mock.calls.filter((c) => String(c[0]).includes('ioredis'))).toEqual([]);
      expect(warnings.filter((w) => w.includes('Redis unreachable'))).toHaveLength(1);
    } finally {
      printed.mockRestore();
      await m.close();
      await startRedis();
    }
  });

  test('the logger is warned once when Redis goes away, however many requests fall back, and once when it is back', async () => {
    const { warnings, logger, warned } = recordingLogger();
    const m = createMesh({
      logger,
      services: {
        api: {
          endpoints: [backends[0]!.url],
          rateLimit: { global: { redis: socket, requestsPerSecond: 1_000, fallbackRequestsPerSecond: 1_000, keyPrefix: `l${Date.now()}` } },
        },
      },
    });
    try {
      expect(await status(m)).toBe(200); // connected: the shared limit applies
      expect(warnings).toEqual([]);
      await stopRedis();
      await warned(unreachable);
      const down: (number | string)[] = [];
      for (let i = 0; i < 5; i++) down.push(await status(m));
      expect(down).toEqual([200, 200, 200, 200, 200]); // the fallback limit lets them through
      expect(warnings.filter((l) => unreachable.test(l))).toHaveLength(1);
      await startRedis();
      await warned(back); // ioredis reconnects on its own
      for (let i = 0; i < 3; i++) expect(await status(m)).toBe(200);
      expect(warnings.filter((l) => unreachable.test(l))).toHaveLength(1);
      expect(warnings.filter((l) => back.test(l))).toHaveLength(1);
      expect(warnings).toHaveLength(2);
    } finally {
      await m.close();
      if (!redis) await startRedis();
    }
  });

  test('a Redis that stops answering (connection open, no replies) does not hold requests: the fallback decides, and the logger is told once', async () => {
    const { warnings, logger, warned } = recordingLogger();
    const m = createMesh({
      logger,
      services: {
        api: {
          endpoints: [backends[0]!.url],
          rateLimit: { global: { redis: socket, requestsPerSecond: 1_000, fallbackRequestsPerSecond: 2, keyPrefix: `s${Date.now()}` } },
        },
      },
    });
    try {
      expect(await status(m)).toBe(200); // connected: the shared limit applies
      const frozen = await whileStopped(() => Promise.all([status(m), status(m), status(m)]));
      // Each settled, by the per-process limit of 2/s: two through, one refused.
      expect(frozen.filter((r) => r === 200)).toHaveLength(2);
      expect(frozen.filter((r) => r === 'RATE_LIMITED')).toHaveLength(1);
      expect(warnings.filter((l) => unreachable.test(l))).toHaveLength(1);
      expect(warnings.find((l) => unreachable.test(l))).toMatch(/no answer within 100 ms|Command timed out/); // ours or ioredis's commandTimeout, whichever first
      // Redis answers again: the next request is decided by it, and the logger hears it is back.
      expect(await status(m)).toBe(200);
      await warned(back);
      expect(warnings).toHaveLength(2);
    } finally {
      await m.close();
    }
  });

  test('a client you pass in gets the same bound without its options being changed', async () => {
    const { Redis } = await import('ioredis');
    const client = new Redis({ path: socket });
    await new Promise((resolve) => client.once('ready', resolve));
    const { warnings, logger } = recordingLogger();
    const m = createMesh({
      logger,
      services: {
        api: {
          endpoints: [backends[0]!.url],
          rateLimit: { global: { client, requestsPerSecond: 1_000, fallbackRequestsPerSecond: 1_000, commandTimeoutMs: '50ms', keyPrefix: `c${Date.now()}` } },
        },
      },
    });
    try {
      expect(await status(m)).toBe(200);
      expect(await whileStopped(() => Promise.all([status(m), status(m)]))).toEqual([200, 200]);
      expect(warnings.filter((l) => unreachable.test(l))).toHaveLength(1);
      expect(warnings.find((l) => unreachable.test(l))).toContain('no answer within 50 ms');
      expect(client.options.commandTimeout).toBeUndefined(); // theirs: untouched
    } finally {
      await m.close();
      client.disconnect();
    }
  });

  test('the count is at <keyPrefix>:<service>: a service of the same name shares it, another keyPrefix keeps an app apart', async () => {
    const name = `keys${Date.now()}`;
    const config = (keyPrefix?: string) => ({
      services: { [name]: { endpoints: [backends[0]!.url], rateLimit: { global: { redis: socket, requestsPerSecond: 2, ...(keyPrefix ? { keyPrefix } : {}) } } } },
    });
    const get = (m: ReturnType<typeof createMesh>) =>
      request(`http://${name}/x`, { dispatcher: m.dispatcher }).then(
        async (r) => (await r.body.dump(), r.statusCode),
        (e: { code?: string }) => e.code ?? 'error',
      );
    const a = createMesh(config());
    const b = createMesh(config());
    const other = createMesh(config('other-app'));
    try {
      expect([await get(a), await get(b), await get(a)]).toEqual([200, 200, 'RATE_LIMITED']);
      expect(await get(other)).toBe(200); // a budget of its own
      const exists = (key: string) => spawnSync('redis-cli', ['-s', socket, 'EXISTS', key], { encoding: 'utf8' }).stdout.trim();
      expect([exists(`meshlet:${name}`), exists(`other-app:${name}`)]).toEqual(['1', '1']);
    } finally {
      await Promise.all([a.close(), b.close(), other.close()]);
    }
  });

  test('a client you pass in keeps no listener of a closed mesh', async () => {
    const { Redis } = await import('ioredis');
    const client = new Redis({ path: socket });
    await new Promise((resolve) => client.once('ready', resolve));
    const before = { error: client.listenerCount('error'), ready: client.listenerCount('ready') };
    const warned: Error[] = [];
    const onWarning = (w: Error): void => void warned.push(w);
    process.on('warning', onWarning);
    try {
      // More meshes than EventEmitter's default limit of 10 listeners per event.
      for (let i = 0; i < 12; i++) {
        const m = createMesh({
          logger: { debug: () => {}, warn: () => {} },
          services: { api: { endpoints: [backends[0]!.url], rateLimit: { global: { client, requestsPerSecond: 1_000, keyPrefix: `k${Date.now()}` } } } },
        });
        expect(await status(m)).toBe(200);
        await m.close();
      }
      expect({ error: client.listenerCount('error'), ready: client.listenerCount('ready') }).toEqual(before);
      expect(warned.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
      expect(client.status).toBe('ready'); // and still yours, connected
    } finally {
      process.off('warning', onWarning);
      client.disconnect();
    }
  });

  // The packages are installed next to meshlet (here: the repository's node_modules); the app
  // runs from a directory with no node_modules of its own, as a service started from / or a
  // systemd unit's WorkingDirectory does.
  for (const kind of ['mjs', 'cjs'] as const) {
    test(`${kind}: the optional packages are found next to meshlet, whatever the working directory`, async () => {
      const app = mkdtempSync(join(tmpdir(), 'meshlet-cwd-'));
      const file = join(app, `main.${kind}`);
      const load = kind === 'mjs' ? `import { createMesh } from ${JSON.stringify(join(dist, 'index.mjs'))};` : `const { createMesh } = require(${JSON.stringify(join(dist, 'index.js'))});`;
      writeFileSync(
        file,
        `${load}
         (async () => {
           const warnings = [];
           const mesh = createMesh({
             logger: { debug() {}, warn: (l) => warnings.push(l) },
             services: { api: { endpoints: [${JSON.stringify(backends[0]!.url)}], rateLimit: { global: { redis: ${JSON.stringify(socket)}, requestsPerSecond: 5 } } } },
           });
           const r = await mesh.fetch('http://api/x');
           await r.arrayBuffer();
           console.log('status', r.status, 'warnings', warnings.length);
           await mesh.close();
         })().catch((e) => console.log(e.code, e.message));`,
      );
      try {
        expect(await runNode(file, app)).toBe('status 200 warnings 0\n');
      } finally {
        rmSync(app, { recursive: true, force: true });
      }
    });
  }
});

test('a configured feature whose optional package is missing fails at createMesh, naming the package', async () => {
  // An app whose node_modules has meshlet (a copy of the build) and its dependencies, not
  // rate-limiter-flexible: nothing on the way from meshlet, the main module or the cwd has it.
  const app = mkdtempSync(join(tmpdir(), 'meshlet-optional-'));
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  const own = join(app, 'node_modules', 'meshletjs');
  mkdirSync(own, { recursive: true });
  cpSync(join(root, 'package.json'), join(own, 'package.json'));
  cpSync(dist, join(own, 'dist'), { recursive: true });
  for (const dep of Object.keys(pkg.dependencies)) {
    mkdirSync(join(app, 'node_modules', dep, '..'), { recursive: true });
    symlinkSync(join(root, 'node_modules', dep), join(app, 'node_modules', dep), 'dir');
  }
  const file = join(app, 'main.mjs');
  writeFileSync(
    file,
    `import { createMesh } from 'meshletjs';
     try { createMesh({ services: { api: { endpoints: ['http://127.0.0.1:1'], rateLimit: { global: { redis: 'redis://127.0.0.1:1', requestsPerSecond: 5 } } } } }); console.log('created'); }
     catch (e) { console.log(e.code, e.message); }`,
  );
  try {
    const out = await runNode(file, app);
    expect(out).toContain('INVALID_CONFIG');
    expect(out).toContain('needs the optional package "rate-limiter-flexible", which is not installed: npm install rate-limiter-flexible');
    expect(out).not.toContain('created');
  } finally {
    rmSync(app, { recursive: true, force: true });
  }
});

test('a redis that is neither a redis:// URL nor an absolute socket path is refused at createMesh, not taken as a socket that is not there', () => {
  const make = (redis: string) => () =>
    createMesh({ services: { api: { endpoints: ['http://127.0.0.1:1'], rateLimit: { global: { redis, requestsPerSecond: 5 } } } } });
  const at = 'services.api.rateLimit.global.redis';
  for (const [redis, why] of [
    ['redis//127.0.0.1:6379', 'a URL starts with "redis://" or "rediss://"'],
    ['http://127.0.0.1:6379', '"http://" is not a Redis scheme'],
    ['127.0.0.1:6379', 'for a host and port, write "redis://127.0.0.1:6379"'],
    ['redis.sock', 'a socket path must be absolute'],
  ] as const) {
    expect(make(redis), redis).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG', path: at, message: expect.stringContaining(why) }));
  }
  // What is shown of the value leaves out anything before an '@': it may be a password.
  expect(make('http://user:s3cret@127.0.0.1:6379')).toThrow(expect.objectContaining({ message: expect.not.stringContaining('s3cret') }));
  expect(make('redis://:s3cret@127.0.0.1:99999')).toThrow(expect.objectContaining({ path: at, message: expect.not.stringContaining('s3cret') }));
});
