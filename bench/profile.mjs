// Where the client's CPU goes per request in hot-path (a). One child process under Node's
// `--cpu-prof` runs the contenders (undici Pool and meshlet with default policies by default;
// `node bench/profile.mjs pool mesh off` picks; `bal mesh3` compares undici's BalancedPool and
// meshlet's defaults over three backends, as overhead.mjs and the sidecar bench balance)
// alternating in 250 ms epochs, as hot-path.mjs does, the backends in their own, unprofiled
// process; each sample is credited to the contender whose measured epoch it falls in (ramp,
// drain, warm-up and start-up are cut). So the contenders are
// profiled side by side on the same machine state, which on this shared machine matters more than
// anything. For each contender: sampled time per request by owner (meshlet's dist code, mapped back
// to src/ with dist's source map; undici incl. its llhttp wasm; other packages; Node's internals; V8
// builtins and GC; this harness), the top self-time functions of meshlet and of undici, in µs per
// request; then meshlet − its baseline (Pool, or BalancedPool for mesh3) per owner and the functions
// outside meshlet that grew most.
// Run: node bench/profile.mjs (Node 24 first on PATH, after `npx tsup`).
// Knobs: BENCH_PROFILE_CYCLES (default 24), BENCH_PROFILE_TOP (rows per list, default 15).
// The profile is kept in bench/results/profiles/ (git-ignored: bench/.gitignore).
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const outDir = join(root, 'bench', 'results', 'profiles');
const cycles = Number(process.env.BENCH_PROFILE_CYCLES ?? 24);
const EPOCH_MS = 250;
const TOP = Number(process.env.BENCH_PROFILE_TOP ?? 15);
const CONTENDERS = {
  pool: 'undici Pool',
  mesh: 'meshlet, default policies',
  off: 'meshlet, every policy off',
  retry: 'undici Pool + its retry interceptor (reference)',
  bal: 'undici BalancedPool (3 backends)',
  mesh3: 'meshlet, default policies (3 backends)',
};
/** What each meshlet contender is compared with in the difference tables. */
const BASELINE = { mesh: 'pool', off: 'pool', mesh3: 'bal' };

if (process.argv[2] === '--child') {
  // In the profiled process: the picked contenders (hot-path (a)'s, and the two over three
  // backends), alternating; writes, per
  // contender, its measured epochs ([start, end] in µs of the profiler's clock) and their totals.
  const { overheadContenders } = await import('./hot-path.mjs');
  const { startBackends } = await import('./support/backends.mjs');
  const { runAlternating, requestSender } = await import('./support/load.mjs');
  const { BalancedPool } = await import('undici');
  const { createMesh } = await import('../dist/index.mjs');
  const picked = JSON.parse(process.argv[3]);
  const backends = await startBackends([{}, {}, {}]);
  const made = [];
  try {
    const all = {
      ...overheadContenders(backends.urls[0], 64),
      [CONTENDERS.bal]: () => {
        const d = new BalancedPool(backends.urls, { connections: 64 });
        return { send: requestSender(d, `${backends.urls[0]}/`), close: () => d.close() };
      },
      [CONTENDERS.mesh3]: () => {
        const m = createMesh({ services: { api: { endpoints: backends.urls, pool: { connections: 64 } } } });
        return { send: requestSender(m.dispatcher, 'http://api/'), close: () => m.close() };
      },
    };
    for (const k of picked) made.push(all[CONTENDERS[k]]());
    const nowUs = () => Number(process.hrtime.bigint() / 1000n);
    const windows = picked.map(() => []);
    let t0 = 0;
    const r = await runAlternating(made.map((c) => c.send), {
      concurrency: 64,
      epochMs: EPOCH_MS,
      cycles,
      onEpochStart: () => (t0 = nowUs()),
      onEpochEnd: (i) => windows[i].push([t0, nowUs()]),
    });
    const out = picked.map((k, i) => {
      const es = r.epochs[i];
      const sum = (f) => es.reduce((a, e) => a + f(e), 0);
      const requests = sum((e) => e.requests);
      return { name: k, windows: windows[i], requests, rps: sum((e) => e.ok) / sum((e) => e.elapsedS), cpuUsPerReq: sum((e) => e.cpuUs) / requests, errors: sum((e) => e.failed) };
    });
    writeFileSync(process.argv[4], JSON.stringify(out));
  } finally {
    for (const c of made) await c.close().catch(() => {});
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

/** Self time (µs) per function and per owner, from the samples inside `windows` (sorted [t0, t1]). */
function summarise(profile, windows) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  let t = profile.startTime;
  let w = 0;
  const fns = new Map();
  const owners = new Map();
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i];
    while (w < windows.length && t > windows[w][1]) w++;
    if (w >= windows.length) break;
    if (t < windows[w][0]) continue;
    const dt = profile.timeDeltas[i + 1] ?? 0; // the time until the next sample is spent here
    const cf = byId.get(profile.samples[i]).callFrame;
    const o = owner(cf);
    owners.set(o, (owners.get(o) ?? 0) + dt);
    const key = `${cf.functionName}|${cf.url}|${cf.lineNumber}|${cf.columnNumber}`;
    const f = fns.get(key) ?? { name: cf.functionName || '(anonymous)', owner: o, where: where(cf), us: 0 };
    f.us += dt;
    fns.set(key, f);
  }
  return { fns: [...fns.values()].sort((a, b) => b.us - a.us), owners };
}

const fmt = (n, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : '—');
const picked = process.argv.slice(2).filter((a) => a in CONTENDERS);
const names = picked.length ? picked : ['pool', 'mesh'];
const summaries = {};
rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });
const meta = join(outDir, 'run.json');
const child = spawnSync(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${outDir}`, fileURLToPath(import.meta.url), '--child', JSON.stringify(names), meta], {
  cwd: root,
  stdio: ['ignore', 'inherit', 'inherit'],
  timeout: cycles * names.length * (EPOCH_MS + 150) + 60_000,
});
const file = readdirSync(outDir).find((f) => f.endsWith('.cpuprofile'));
if (child.status !== 0 || !file) {
  console.log(`the profiled run failed (${child.status ?? child.signal}); nothing to show`);
  process.exit(1);
}
const profile = JSON.parse(readFileSync(join(outDir, file), 'utf8'));
const runs = JSON.parse(readFileSync(meta, 'utf8'));
const inProfile = runs.every((r) => r.windows.length > 0 && r.windows[0][0] >= profile.startTime && r.windows.at(-1)[1] <= profile.endTime);
console.log(`profile: ${join('bench/results/profiles', file)}; ${cycles} cycles of ${EPOCH_MS} ms epochs, contenders alternating${inProfile ? '' : ' — WARNING: the epochs are not inside the profile\'s time range; the attribution below is wrong'}`);
for (const run of runs) {
  const name = run.name;
  const s = summarise(profile, run.windows);
  summaries[name] = { run, ...s };
  const perReq = (us) => us / run.requests;
  const busy = [...s.owners].filter(([o]) => o !== '(idle)').reduce((a, [, us]) => a + us, 0);
  console.log(`\n## ${CONTENDERS[name]} — ${run.requests} requests in ${run.windows.length} epochs (${fmt(run.rps, 0)} req/s, ${run.errors} errors), process.cpuUsage ${fmt(run.cpuUsPerReq, 1)} µs/req, sampled on the main thread ${fmt(perReq(busy), 1)} µs/req (the sampler counts wall time, so a preempted thread inflates it on a busy machine)`);
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

for (const name of Object.keys(BASELINE).filter((n) => summaries[n] && summaries[BASELINE[n]])) {
  const base = BASELINE[name];
  const a = summaries[name];
  const b = summaries[base];
  const owners = new Set([...a.owners.keys(), ...b.owners.keys()].filter((o) => o !== '(idle)'));
  console.log(`\n## ${CONTENDERS[name]} − ${CONTENDERS[base]}, sampled self time per request by owner`);
  console.log(`| owner | meshlet µs/req | ${CONTENDERS[base]} µs/req | difference |`);
  console.log('|---|---:|---:|---:|');
  const rows = [...owners].map((o) => [o, (a.owners.get(o) ?? 0) / a.run.requests, (b.owners.get(o) ?? 0) / b.run.requests]);
  for (const [o, x, y] of rows.sort((p, q) => q[1] - q[2] - (p[1] - p[2]))) console.log(`| ${o} | ${fmt(x)} | ${fmt(y)} | ${x - y >= 0 ? '+' : ''}${fmt(x - y)} |`);
  // Per function outside meshlet: what the extra undici / Node / V8 time is made of.
  const perFn = (sm) => {
    const m = new Map();
    for (const f of sm.fns) if (f.owner !== '(idle)' && f.owner !== 'meshlet (dist)') m.set(`${f.name}|${f.where}|${f.owner}`, (m.get(`${f.name}|${f.where}|${f.owner}`) ?? 0) + f.us / sm.run.requests);
    return m;
  };
  const fa = perFn(a);
  const fb = perFn(b);
  const diffs = [...new Set([...fa.keys(), ...fb.keys()])].map((k) => [k, (fa.get(k) ?? 0) - (fb.get(k) ?? 0)]).sort((p, q) => q[1] - p[1]).slice(0, TOP);
  console.log(`\ntop ${TOP} increases outside meshlet's code (${CONTENDERS[name]} − ${CONTENDERS[base]}), µs/req:`);
  console.log(`| # | function | owner | where | meshlet | ${CONTENDERS[base]} | difference |`);
  console.log('|---:|---|---|---|---:|---:|---:|');
  diffs.forEach(([k, d], i) => {
    const [fn, at, o] = k.split('|');
    console.log(`| ${i + 1} | ${fn} | ${o} | ${at} | ${fmt(fa.get(k) ?? 0, 3)} | ${fmt(fb.get(k) ?? 0, 3)} | +${fmt(d, 3)} |`);
  });
}
