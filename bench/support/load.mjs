// A closed-loop load generator: `concurrency` workers, each sending its next request when the
// previous one ends, for a warm-up and then a measured window (bounded: the run ends at most 2 s
// after the window closes, requests still running then count as failures). Latency of each
// successful request, in ns, in a perf_hooks histogram; printed in ms.
import { createHistogram } from 'node:perf_hooks';
import { request } from 'undici';

/**
 * @param send () => Promise<number>  one request; resolves to its status (throws on failure)
 * @param onWindowStart / onWindowEnd  called just before the CPU reading that opens the measured
 *   window and just after the one that closes it (e.g. to read other processes' CPU over it)
 * @returns {{ rps, p50Ms, p99Ms, ok, failed, errors, unfinished, successRate, cpuPercent, cpuUsPerReq }}
 *   rps counts successful requests (status < 500) in the measured window; `errors` = failed +
 *   unfinished; cpuPercent / cpuUsPerReq: this process's CPU (user + system) over the window — the
 *   client's cost per request, which stays meaningful when the backends are the bottleneck
 */
export async function runLoad(send, { concurrency = 64, warmupMs = 1000, durationMs = 4000, onWindowStart, onWindowEnd } = {}) {
  const hist = createHistogram();
  let ok = 0;
  let failed = 0;
  let measuring = false;
  let running = true;
  let inFlight = 0;
  const worker = async () => {
    while (running) {
      const t = process.hrtime.bigint();
      inFlight++;
      let good = false;
      try {
        good = (await send()) < 500;
      } catch {
        good = false;
      }
      inFlight--;
      if (!measuring) continue;
      if (good) {
        ok++;
        hist.record(Math.max(1, Number(process.hrtime.bigint() - t)));
      } else failed++;
    }
  };
  const workers = Array.from({ length: concurrency }, worker);
  await new Promise((r) => setTimeout(r, warmupMs));
  onWindowStart?.(); // before the CPU reading: what the hook costs is not the client's
  const cpu0 = process.cpuUsage();
  measuring = true;
  const started = performance.now();
  await new Promise((r) => setTimeout(r, durationMs));
  measuring = false;
  const cpu = process.cpuUsage(cpu0);
  const elapsed = (performance.now() - started) / 1000;
  onWindowEnd?.();
  running = false;
  // Requests still running when the window closes finish uncounted; those still running 2 s
  // later are hung, and count as failures.
  await Promise.race([Promise.all(workers), new Promise((r) => setTimeout(r, 2000))]);
  const unfinished = inFlight;
  const total = ok + failed + unfinished;
  return {
    rps: ok / elapsed,
    p50Ms: hist.count ? hist.percentile(50) / 1e6 : NaN,
    p99Ms: hist.count ? hist.percentile(99) / 1e6 : NaN,
    ok,
    failed,
    requests: ok + failed,
    cpuUs: cpu.user + cpu.system,
    elapsedS: elapsed,
    errors: failed + unfinished,
    unfinished,
    successRate: total ? ok / total : NaN,
    cpuPercent: ((cpu.user + cpu.system) / 1e4) / elapsed,
    cpuUsPerReq: ok + failed ? (cpu.user + cpu.system) / (ok + failed) : NaN,
  };
}

/** A `send` function for any undici Dispatcher (Pool, BalancedPool, the mesh dispatcher). */
export function sender(dispatcher, origin, path = '/') {
  const opts = { origin, path, method: 'GET' };
  return async () => {
    const res = await dispatcher.request(opts);
    await res.body.dump();
    return res.statusCode;
  };
}

/** A `send` through undici's top-level `request(url, { dispatcher })`, as an application calls it. */
export function requestSender(dispatcher, url) {
  const opts = { dispatcher, method: 'GET' };
  return async () => {
    const res = await request(url, opts);
    await res.body.dump();
    return res.statusCode;
  };
}

export const fmt = (n, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : '—');

/**
 * Closed-loop load that alternates between contenders in short epochs, so that every contender
 * meets the same machine: on a shared machine other work comes and goes over seconds, and runs
 * taken seconds apart compare that noise, not the contenders. All `senders` stay open (warm)
 * throughout; `concurrency` workers send through the current one. Each epoch: switch, `rampMs`
 * unmeasured, `epochMs` measured (requests, CPU of this process, latency), then the workers pause
 * and the epoch drains (bounded: 2 s) before the next contender's. The order rotates every cycle.
 * `warmupCycles` cycles are run first and not recorded.
 * @param senders Array<() => Promise<number>>
 * @param onEpochStart / onEpochEnd (i) => any  called just outside the CPU readings of an epoch;
 *   onEpochEnd's result is kept as that epoch's `extra` (e.g. other processes' CPU)
 * @returns {{ epochs: Array<Array<{ cycle, rps, requests, ok, failed, cpuUs, cpuUsPerReq, elapsedS, p99Ms, extra }>>, p99Ms: number[], unfinished: number }}
 *   epochs[i][cycle] for contender i (p99Ms: of that epoch alone); p99Ms[i]: over all of i's epochs
 */
export async function runAlternating(senders, { concurrency = 64, epochMs = 250, rampMs = 50, cycles = 30, warmupCycles = 2, onEpochStart, onEpochEnd } = {}) {
  const hists = senders.map(() => createHistogram());
  const epochs = senders.map(() => []);
  let current = 0;
  let running = true;
  let paused = true;
  let counting = false;
  let inFlight = 0;
  let ok = 0;
  let failed = 0;
  let wake;
  let gate = new Promise((r) => (wake = r));
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const worker = async () => {
    while (running) {
      if (paused) {
        await gate;
        continue;
      }
      const i = current;
      const t = process.hrtime.bigint();
      inFlight++;
      let good = false;
      try {
        good = (await senders[i]()) < 500;
      } catch {
        good = false;
      }
      inFlight--;
      if (!counting || i !== current) continue;
      if (good) {
        ok++;
        const ns = Math.max(1, Number(process.hrtime.bigint() - t));
        hists[i].record(ns);
        epochHist.record(ns);
      } else failed++;
    }
  };
  let epochHist = createHistogram();
  const workers = Array.from({ length: concurrency }, worker);
  let unfinished = 0;
  try {
    for (let cycle = 0; cycle < warmupCycles + cycles; cycle++) {
      for (let k = 0; k < senders.length; k++) {
        const i = (k + cycle) % senders.length;
        current = i;
        paused = false;
        wake();
        await sleep(rampMs);
        const record = cycle >= warmupCycles;
        if (record) onEpochStart?.(i);
        const cpu0 = process.cpuUsage();
        const t0 = performance.now();
        ok = 0;
        failed = 0;
        epochHist = createHistogram();
        counting = record;
        await sleep(epochMs);
        counting = false;
        const cpu = process.cpuUsage(cpu0);
        const elapsedS = (performance.now() - t0) / 1000;
        const n = { ok, failed };
        const extra = record ? onEpochEnd?.(i) : undefined;
        gate = new Promise((r) => (wake = r));
        paused = true;
        for (let w = 0; inFlight > 0 && w < 400; w++) await sleep(5); // drain, at most 2 s
        unfinished = Math.max(unfinished, inFlight);
        if (!record) continue;
        const cpuUs = cpu.user + cpu.system;
        const requests = n.ok + n.failed;
        const p99Ms = epochHist.count ? epochHist.percentile(99) / 1e6 : NaN;
        epochs[i].push({ cycle: cycle - warmupCycles, rps: n.ok / elapsedS, requests, ok: n.ok, failed: n.failed, cpuUs, cpuUsPerReq: requests ? cpuUs / requests : NaN, elapsedS, p99Ms, extra });
      }
    }
  } finally {
    running = false;
    paused = false;
    wake();
    await Promise.race([Promise.all(workers), sleep(2000)]);
  }
  return { epochs, p99Ms: hists.map((h) => (h.count ? h.percentile(99) / 1e6 : NaN)), unfinished };
}

/** The median of the finite numbers in `xs` (NaN when there is none). */
export function median(xs) {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
}

/**
 * Contender `i` of a runAlternating result `r` against contender 0 (the baseline): req/s over its
 * epochs, p99 over the whole run, and p99 ÷ the baseline's as the median over cycles of the
 * per-cycle ratio (one cycle a stall on the machine hit does not decide it), and its errors.
 */
export function againstBaseline(r, i) {
  const epochs = r.epochs[i];
  const base = r.epochs[0];
  const ok = epochs.reduce((a, e) => a + e.ok, 0);
  const secs = epochs.reduce((a, e) => a + e.elapsedS, 0);
  return {
    rps: ok / secs,
    p99Ms: r.p99Ms[i],
    vsAllFast: median(epochs.map((e, k) => e.p99Ms / base[k].p99Ms)),
    vsAllFastMerged: r.p99Ms[i] / r.p99Ms[0],
    errors: epochs.reduce((a, e) => a + e.failed, 0),
  };
}
