// Where the client's CPU goes per request in hot-path (a): runs one contender at a time (undici
// Pool, then meshlet with default policies; `node bench/profile.mjs [pool|mesh|off]…` picks) in a
// child process under Node's `--cpu-prof`, the backend in its own, unprofiled process. Only the
// samples inside the measured window count (warm-up and start-up are cut). For each contender:
// sampled CPU per request by owner (meshlet's dist code, mapped back to src/ with dist's source map;
// undici; other packages; Node's internals; V8 builtins and GC; this harness), then the top self-time
// functions of meshlet and of undici, in µs per request, and, last, meshlet − Pool per owner.
// Run: node bench/profile.mjs (Node 24 first on PATH, after `npx tsup`); the numbers are per request
// in the measured window, so the contenders compare even when their req/s differ.
// Knobs: BENCH_PROFILE_MS (window, default 5000), BENCH_PROFILE_TOP (rows per list, default 15).
// Profiles are kept in bench/results/profiles/ (git-ignored: bench/.gitignore).
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const outDir = join(root, 'bench', 'results', 'profiles');
const windowMs = Number(process.env.BENCH_PROFILE_MS ?? 5000);
const TOP = Number(process.env.BENCH_PROFILE_TOP ?? 15);
const CONTENDERS = { pool: 'undici Pool', mesh: 'meshlet, default policies', off: 'meshlet, every policy off' };

if (process.argv[2] === '--child') {
  // In the profiled process: one contender of hot-path (a), 500 ms warm-up + the window.
  const { overheadContenders } = await import('./hot-path.mjs');
  const { startBackends } = await import('./support/backends.mjs');
  const { runLoad } = await import('./support/load.mjs');
  const backends = await startBackends([{}]);
  try {
    const c = overheadContenders(backends.urls[0], 64)[CONTENDERS[process.argv[3]]]();
    let t0 = 0;
    let t1 = 0;
    const nowUs = () => Number(process.hrtime.bigint() / 1000n);
    const r = await runLoad(c.send, { concurrency: 64, warmupMs: 500, durationMs: windowMs, onWindowStart: () => (t0 = nowUs()), onWindowEnd: () => (t1 = nowUs()) });
    await c.close();
    writeFileSync(process.argv[4], JSON.stringify({ requests: r.requests, rps: r.rps, cpuUsPerReq: r.cpuUsPerReq, errors: r.errors, t0, t1 }));
  } finally {
    await backends.close();
  }
  process.exit(0);
}

let distMap;
try {
  distMap = new SourceMap(JSON.parse(readFileSync(join(root, 'dist', 'index.mjs.map'), 'utf8')));
} catch {
  distMap = null;
}

function owner(cf) {
  const { url, functionName } = cf;
  if (!url) return /^\((garbage collector|idle|program|root)\)$/.test(functionName) ? functionName : 'V8 builtins / native';
  if (url.includes('/dist/index.')) return 'meshlet (dist)';
  if (url.startsWith('wasm://')) return 'undici'; // llhttp, undici's HTTP/1 parser, is its only wasm here
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1];
  if (pkg) return pkg;
  if (url.startsWith('node:')) return 'node internals';
  if (url.includes('/bench/')) return 'bench harness';
  return 'other';
}

function where(cf) {
  const line = cf.lineNumber + 1;
  if (cf.url.includes('/dist/index.') && distMap) {
    const e = distMap.findEntry(cf.lineNumber, cf.columnNumber);
    if (e?.originalSource) return `${e.originalSource.replace(/^.*?(src\/)/, '$1')}:${e.originalLine + 1}`;
  }
  const m = /node_modules\/(.*)$/.exec(cf.url);
  if (m) return `${m[1]}:${line}`;
  return cf.url ? `${cf.url.replace(/^file:\/\/.*?\/bench\//, 'bench/')}:${line}` : '';
}

/** Self time (µs) per function and per owner, from the samples inside [t0, t1]. */
function summarise(profile, t0, t1) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  let t = profile.startTime;
  const inWindow = t0 >= profile.startTime && t1 <= profile.endTime && t1 > t0;
  const fns = new Map();
  const owners = new Map();
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i];
    if (inWindow && (t < t0 || t > t1)) continue;
    const dt = profile.timeDeltas[i + 1] ?? 0; // the time until the next sample is spent here
    const cf = byId.get(profile.samples[i]).callFrame;
    const o = owner(cf);
    owners.set(o, (owners.get(o) ?? 0) + dt);
    const key = `${cf.functionName}|${cf.url}|${cf.lineNumber}|${cf.columnNumber}`;
    const f = fns.get(key) ?? { name: cf.functionName || '(anonymous)', owner: o, where: where(cf), us: 0 };
    f.us += dt;
    fns.set(key, f);
  }
  return { fns: [...fns.values()].sort((a, b) => b.us - a.us), owners, inWindow };
}

const fmt = (n, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : '—');
const picked = process.argv.slice(2).filter((a) => a in CONTENDERS);
const names = picked.length ? picked : ['pool', 'mesh'];
mkdirSync(outDir, { recursive: true });
const summaries = {};
for (const name of names) {
  const dir = join(outDir, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const meta = join(dir, 'run.json');
  const child = spawnSync(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, fileURLToPath(import.meta.url), '--child', name, meta], {
    cwd: root,
    stdio: ['ignore', 'inherit', 'inherit'],
    timeout: windowMs + 30_000,
  });
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (child.status !== 0 || !file) {
    console.log(`${CONTENDERS[name]}: the profiled run failed (${child.status ?? child.signal}); skipped`);
    continue;
  }
  const run = JSON.parse(readFileSync(meta, 'utf8'));
  const s = summarise(JSON.parse(readFileSync(join(dir, file), 'utf8')), run.t0, run.t1);
  summaries[name] = { run, ...s };
  const perReq = (us) => us / run.requests;
  const busy = [...s.owners].filter(([o]) => o !== '(idle)').reduce((a, [, us]) => a + us, 0);
  console.log(`\n## ${CONTENDERS[name]} — ${run.requests} requests in ${windowMs} ms (${fmt(run.rps, 0)} req/s, ${run.errors} errors), process.cpuUsage ${fmt(run.cpuUsPerReq, 1)} µs/req, sampled on the main thread ${fmt(perReq(busy), 1)} µs/req (the sampler counts wall time, so a preempted thread inflates it on a busy machine)${s.inWindow ? '' : ' (window not found in the profile: whole run)'}`);
  console.log(`profile: ${join('bench/results/profiles', name, file)}`);
  console.log('| owner | µs/req | share |');
  console.log('|---|---:|---:|');
  for (const [o, us] of [...s.owners].sort((a, b) => b[1] - a[1])) if (o !== '(idle)') console.log(`| ${o} | ${fmt(perReq(us))} | ${fmt((100 * us) / busy, 1)} % |`);
  for (const who of ['meshlet (dist)', 'undici', null]) {
    const list = s.fns.filter((f) => (who ? f.owner === who : f.owner !== '(idle)')).slice(0, TOP);
    if (who && list.length === 0) continue;
    console.log(`\ntop ${TOP} self time, ${who ?? 'all owners'}:`);
    console.log('| # | function | owner | where | µs/req | share of busy |');
    console.log('|---:|---|---|---|---:|---:|');
    list.forEach((f, i) => console.log(`| ${i + 1} | ${f.name} | ${f.owner} | ${f.where} | ${fmt(perReq(f.us), 3)} | ${fmt((100 * f.us) / busy, 1)} % |`));
  }
}

if (summaries.pool && (summaries.mesh || summaries.off)) {
  for (const name of ['mesh', 'off'].filter((n) => summaries[n])) {
    const a = summaries[name];
    const b = summaries.pool;
    const owners = new Set([...a.owners.keys(), ...b.owners.keys()].filter((o) => o !== '(idle)'));
    console.log(`\n## ${CONTENDERS[name]} − undici Pool, sampled self time per request by owner`);
    console.log('| owner | meshlet µs/req | Pool µs/req | difference |');
    console.log('|---|---:|---:|---:|');
    const rows = [...owners].map((o) => [o, (a.owners.get(o) ?? 0) / a.run.requests, (b.owners.get(o) ?? 0) / b.run.requests]);
    for (const [o, x, y] of rows.sort((p, q) => q[1] - q[2] - (p[1] - p[2]))) console.log(`| ${o} | ${fmt(x)} | ${fmt(y)} | ${x - y >= 0 ? '+' : ''}${fmt(x - y)} |`);
  }
}
