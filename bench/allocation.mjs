// Garbage per request: what the heap takes in for one request through undici `Pool` straight to
// the backend, and through meshlet (default policies, and every policy off), c=64, the backend in
// another process. V8's GCProfiler (node:v8) reports the heap used before and after every
// collection over the measured requests; what the collections freed plus what the heap grew by,
// over the number of requests, is the bytes allocated per request (to within what stays live at
// the end). The contenders take turns, twice each, after a warm-up of their own; the second round
// is printed beside the first so a disagreement shows. Run: node bench/allocation.mjs (after npx
// tsup; Node 24 first on PATH).
import { GCProfiler } from 'node:v8';
import { Pool, request } from 'undici';
import { createMesh } from '../dist/index.mjs';
import { startBackends } from './support/backends.mjs';

const CONCURRENCY = 64;
const REQUESTS = Number(process.env.BENCH_ALLOC_REQUESTS ?? 100_000);
const WARMUP = 20_000;

async function drive(dispatcher, url, n) {
  let sent = 0;
  const worker = async () => {
    while (sent < n) {
      sent++;
      const res = await request(url, { dispatcher });
      await res.body.dump();
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}

/** Bytes allocated per request and the scavenges it took, over `REQUESTS` requests. */
async function measure(dispatcher, url) {
  await drive(dispatcher, url, WARMUP);
  const profiler = new GCProfiler();
  profiler.start();
  const before = process.memoryUsage().heapUsed;
  await drive(dispatcher, url, REQUESTS);
  const { statistics } = profiler.stop();
  let freed = 0;
  let scavenges = 0;
  for (const s of statistics) {
    if (s.gcType === 'Scavenge') scavenges++;
    freed += s.beforeGC.heapStatistics.usedHeapSize - s.afterGC.heapStatistics.usedHeapSize;
  }
  const grown = process.memoryUsage().heapUsed - before;
  return { bytes: (freed + grown) / REQUESTS, scavenges };
}

export async function allocation() {
  const backends = await startBackends([{}]);
  const url = backends.urls[0];
  const mesh = (extra) => createMesh({ services: { api: { endpoints: [url], pool: { connections: CONCURRENCY }, ...extra } } });
  const pool = new Pool(url, { connections: CONCURRENCY });
  const defaults = mesh({});
  const off = mesh({ retry: false, outlierDetection: false, circuitBreaker: false });
  const contenders = [
    ['undici Pool', pool, `${url}/`],
    ['meshlet, default policies', defaults.dispatcher, 'http://api/'],
    ['meshlet, every policy off', off.dispatcher, 'http://api/'],
  ];
  const rounds = contenders.map(() => []);
  try {
    for (let round = 0; round < 2; round++) for (const [i, [, d, u]] of contenders.entries()) rounds[i].push(await measure(d, u));
  } finally {
    await Promise.all([pool.close(), defaults.close(), off.close()]);
    await backends.close();
  }
  const base = rounds[0].reduce((a, r) => a + r.bytes, 0) / 2;
  console.log(`allocation per request — 1 endpoint (backend in another process), c=${CONCURRENCY}, ${REQUESTS} requests per round, two rounds`);
  console.log('| contender | KB/request (round 1, round 2) | scavenges | − Pool KB |');
  console.log('|---|---:|---:|---:|');
  for (const [i, [name]] of contenders.entries()) {
    const [a, b] = rounds[i];
    const mean = (a.bytes + b.bytes) / 2;
    console.log(`| ${name} | ${(a.bytes / 1024).toFixed(2)}, ${(b.bytes / 1024).toFixed(2)} | ${a.scavenges}, ${b.scavenges} | ${i === 0 ? '' : ((mean - base) / 1024).toFixed(2)} |`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await allocation();
