// Sidecar proxies for the benches: HAProxy and nginx from Debian's packages, each with one worker
// (HAProxy `nbthread 1`, nginx `worker_processes 1`), balancing round robin over the given
// upstreams with keep-alive on both sides, on loopback. Installed with apt-get when missing and
// this process is root; otherwise `ensureProxy` says why it cannot and the caller skips.
// Each proxy is started in its own process group (nginx = master + worker) and the whole group is
// killed on `stop()`, and also when this process exits (normally, on an uncaught error, or on
// Ctrl-C / SIGTERM via support/backends.mjs's handlers, which call process.exit).
// A proxy's CPU: `processCpuUs(pid)` from support/cpu.mjs (nginx's worker is a child of its master).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

export const PROXIES = {
  haproxy: {
    pkg: 'haproxy',
    cmd: 'haproxy',
    config: (dir, port, upstreams) =>
      [
        'global', '  maxconn 8192', '  nbthread 1',
        'defaults', '  mode http', '  timeout connect 5s', '  timeout client 30s', '  timeout server 30s', '  option http-keep-alive',
        'frontend fe', `  bind 127.0.0.1:${port}`, '  default_backend be',
        'backend be', '  balance roundrobin', '  http-reuse always',
        ...upstreams.map((u, i) => `  server s${i} ${u.replace('http://', '')}`),
      ].join('\n') + '\n',
    args: (cfg) => ['-f', cfg, '-db'],
  },
  nginx: {
    pkg: 'nginx-light',
    cmd: 'nginx',
    // keepalive_requests: nginx closes a keep-alive connection after 1,000 requests by default
    // (client and upstream side); a sidecar does not churn connections like that, so raise it.
    config: (dir, port, upstreams) => `worker_processes 1;
error_log ${dir}/error.log;
pid ${dir}/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  upstream app { ${upstreams.map((u) => `server ${u.replace('http://', '')};`).join(' ')} keepalive 128; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:${port};
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
`,
    args: (cfg, dir) => ['-c', cfg, '-p', dir, '-g', 'daemon off;'],
  },
};

/**
 * Is the proxy's binary there, installing its package when it is not (as root, with apt-get,
 * bounded by timeouts; `apt-get update` once if the first install fails)?
 * @returns {{ ok: true } | { ok: false, why: string }}
 */
export function ensureProxy(name, log = console.log) {
  const p = PROXIES[name];
  if (has(p.cmd)) return { ok: true };
  if (process.getuid?.() !== 0) return { ok: false, why: `${p.cmd} is not installed and this is not root (apt-get install ${p.pkg})` };
  if (!has('apt-get')) return { ok: false, why: `${p.cmd} is not installed and there is no apt-get` };
  log(`   ${name}: not installed; apt-get install ${p.pkg} …`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', p.pkg], { stdio: 'ignore', env, timeout: 180_000 });
  install();
  if (!has(p.cmd)) {
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env, timeout: 180_000 });
    install();
  }
  return has(p.cmd) ? { ok: true } : { ok: false, why: `apt-get install ${p.pkg} did not provide ${p.cmd}` };
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const live = new Set();
function killGroup(child) {
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}
process.on('exit', () => {
  for (const c of live) killGroup(c);
  live.clear();
});

/**
 * Start proxy `name` in front of `upstreams`; resolves once it accepts connections (at most ~5 s).
 * @returns {Promise<{ origin: string, pid: number, stop(): Promise<void> }>}
 */
export async function startProxy(name, upstreams) {
  const p = PROXIES[name];
  const dir = mkdtempSync(join(tmpdir(), `meshlet-${name}-`));
  const port = await freePort();
  const cfg = join(dir, `${name}.conf`);
  writeFileSync(cfg, p.config(dir, port, upstreams));
  const child = spawn(p.cmd, p.args(cfg, dir), { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  live.add(child);
  let stderr = '';
  child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-2000)));
  child.once('error', (err) => (stderr += ` (${err.message})`));
  const exited = new Promise((r) => child.once('exit', r));
  const stop = async () => {
    if (live.delete(child)) {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // already gone
      }
      const timer = setTimeout(() => killGroup(child), 2000);
      await exited;
      clearTimeout(timer);
      killGroup(child); // any worker left behind
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(port, () => child.exitCode !== null || child.signalCode !== null);
  } catch (err) {
    await stop();
    throw new Error(`${err.message}${stderr ? `; its stderr: ${stderr.trim().split('\n').slice(-3).join(' ')}` : ''}`);
  }
  return { origin: `http://127.0.0.1:${port}`, pid: child.pid, stop };
}

async function waitFor(port, gone) {
  for (let i = 0; i < 100; i++) {
    if (gone()) throw new Error('the proxy exited at start');
    const ok = await new Promise((r) => {
      const c = net.connect(port, '127.0.0.1', () => (c.end(), r(true)));
      c.on('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${port} after 5 s`);
}
