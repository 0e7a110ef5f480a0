// Start the backend process and talk to it. Always `await b.close()` (also done on exit).
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const script = fileURLToPath(new URL('./backend-process.mjs', import.meta.url));
const live = new Set();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

export async function startBackends(specs) {
  const child = fork(script, [JSON.stringify(specs)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  live.add(child);
  const { ports } = await new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`backend process exited (${code})`)));
  });
  let seq = 0;
  const acks = new Map();
  child.on('message', (m) => acks.get(m.ack)?.());
  return {
    urls: ports.map((p) => `http://127.0.0.1:${p}`),
    /** Change backend `index` (delayMs, failRate, hang, stop, start); resolves when applied. */
    set(index, change) {
      const id = ++seq;
      return new Promise((resolve) => {
        acks.set(id, resolve);
        child.send({ index, seq: id, ...change });
      });
    },
    async close() {
      live.delete(child);
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
