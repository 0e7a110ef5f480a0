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
