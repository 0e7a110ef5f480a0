/**
 * Real HTTP backends for tests, on 127.0.0.1 port 0, that can be told to misbehave: answer with a
 * status, delay, reset the connection (at once, or after reading the request body), hang, or stop
 * listening. Each counts what it received.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type Fault =
  | { kind: 'none' }
  | { kind: 'status'; status: number }
  | { kind: 'delay'; ms: number }
  | { kind: 'reset' }
  /** Read the whole request body (recorded), then reset the connection without answering. */
  | { kind: 'reset-after-body' }
  | { kind: 'hang' };

export interface ReceivedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface Backend {
  readonly name: string;
  readonly url: string;
  readonly port: number;
  /** Requests received, in order (bodies buffered unless `countOnly`). */
  readonly received: ReceivedRequest[];
  /** Current fault; change it at any time. */
  fault: Fault;
  /** Custom handler that replaces the default echo (name, method, url, host). */
  handler: ((req: http.IncomingMessage, res: http.ServerResponse) => void) | null;
  /** Stop accepting (connections refused); existing sockets are destroyed. */
  stop(): Promise<void>;
  /** Listen again on the same port. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

/** Start a backend; by default it answers 200 with JSON `{ backend, method, url, host }`. */
export async function startBackend(name: string, opts: { bufferBodies?: boolean } = {}): Promise<Backend> {
  const sockets = new Set<import('node:net').Socket>();
  const received: ReceivedRequest[] = [];
  let server: http.Server;
  let port = 0;

  const backend: Backend = {
    name,
    url: '',
    port: 0,
    received,
    fault: { kind: 'none' },
    handler: null,
    async stop() {
      await closeServer();
    },
    async restart() {
      await listen(port);
    },
    async close() {
      await closeServer();
    },
  };

  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const fault = backend.fault;
    if (fault.kind === 'reset') {
      req.socket.destroy();
      received.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.alloc(0) });
      return;
    }
    if (backend.handler) {
      received.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.alloc(0) });
      backend.handler(req, res);
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      if (opts.bufferBodies !== false) chunks.push(c);
    });
    req.on('end', () => {
      received.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks) });
      if (fault.kind === 'reset-after-body') {
        req.socket.destroy();
        return;
      }
      if (fault.kind === 'hang') return;
      const reply = (): void => {
        const status = fault.kind === 'status' ? fault.status : 200;
        res.writeHead(status, { 'content-type': 'application/json', 'x-backend': name });
        res.end(JSON.stringify({ backend: name, method: req.method, url: req.url, host: req.headers.host }));
      };
      if (fault.kind === 'delay') setTimeout(reply, fault.ms);
      else reply();
    });
  };

  function listen(p: number): Promise<void> {
    server = http.createServer(onRequest);
    server.keepAliveTimeout = 10_000;
    server.on('connection', (s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(p, '127.0.0.1', () => {
        port = (server.address() as AddressInfo).port;
        (backend as { port: number }).port = port;
        (backend as { url: string }).url = `http://127.0.0.1:${port}`;
        resolve();
      });
    });
  }

  function closeServer(): Promise<void> {
    return new Promise((resolve) => {
      if (!server.listening) return resolve();
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  }

  await listen(0);
  return backend;
}

/** Start `n` backends named `${prefix}0`…; close them all with `closeAll`. */
export async function startBackends(n: number, prefix = 'b'): Promise<Backend[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => startBackend(`${prefix}${i}`)));
}

export async function closeAll(backends: readonly Backend[]): Promise<void> {
  await Promise.all(backends.map((b) => b.close()));
}
