// Start the backend process (bench/support/backend-process.mjs, via child_process.fork) and talk
// to it over IPC. Always `await b.close()` in a finally; a backend process still alive when this
// process exits — normally, on an uncaught error, or on Ctrl-C / SIGTERM — is killed.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const script = fileURLToPath(new URL('./backend-process.mjs', import.meta.url));
const live = new Set();

function killAll() {
  for (const c of live) c.kill('SIGKILL');
  live.clear();
}
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    killAll();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  });
}

/**
 * @param specs one `{ delayMs?, jitterMs?, failRate?, failStatus? }` per backend
 * @returns {{ urls: string[], set(index, change): Promise<void>, close(): Promise<void> }}
 */
export async function startBackends(specs) {
  // execArgv: [] — flags given to the bench (--cpu-prof, --inspect) are not for the backends.
  const child = fork(script, [JSON.stringify(specs)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
  live.add(child);
  let ports;
  try {
    ({ ports } = await new Promise((resolve, reject) => {
      child.once('message', resolve);
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`backend process exited (${code})`)));
    }));
  } catch (err) {
    live.delete(child);
    child.kill('SIGKILL');
    throw err;
  }
  let seq = 0;
  const acks = new Map();
  child.on('message', (m) => {
    acks.get(m.ack)?.();
    acks.delete(m.ack);
  });
  return {
    urls: ports.map((p) => `http://127.0.0.1:${p}`),
    /** The backend process's pid (e.g. to read its CPU from /proc). */
    pid: child.pid,
    /** Change backend `index` (delayMs, jitterMs, failRate, hang, stop, start); resolves when applied. */
    set(index, change) {
      const id = ++seq;
      return new Promise((resolve) => {
        acks.set(id, resolve);
        child.send({ index, seq: id, ...change });
      });
    },
    /** Stop the backends (SIGTERM, then SIGKILL after 2 s) and wait for the process to exit. */
    async close() {
      if (!live.delete(child)) return;
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(timer);
    },
  };
}
