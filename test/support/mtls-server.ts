/**
 * An https server that requires a client certificate and records, per connection, the SNI and the
 * client certificate it got; and istio-agent's three files written into a directory.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import type { Pair } from './pki.js';

export interface MtlsServer {
  url: string;
  port: number;
  /** Per connection: the SNI the client sent and the SHA-256 of its certificate. */
  connections: { sni: string | false | null; client: string }[];
  /** Resolves on the next TLS connection. */
  nextConnection(): Promise<void>;
  /** Present another certificate from the next connection on. */
  present(pair: Pair): void;
  close(): Promise<void>;
}

/** An https server on 127.0.0.1 that requires a client certificate signed by `ca`. */
export async function serveMtls(pair: Pair, ca: Pair, opts: { closeEach?: boolean } = {}): Promise<MtlsServer> {
  const connections: MtlsServer['connections'] = [];
  let waiting: (() => void)[] = [];
  const server = https.createServer({ cert: pair.cert, key: pair.key, ca: ca.cert, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    res.writeHead(200, opts.closeEach ? { connection: 'close' } : {});
    res.end(JSON.stringify({ host: req.headers.host }));
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    const peer = socket.getPeerCertificate();
    connections.push({ sni: socket.servername, client: peer?.raw ? createHash('sha256').update(peer.raw).digest('hex') : 'none' });
    const w = waiting;
    waiting = [];
    for (const r of w) r();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    connections,
    nextConnection: () => new Promise((r) => waiting.push(r)),
    present: (p) => server.setSecureContext({ cert: p.cert, key: p.key, ca: ca.cert }),
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A certificate's SHA-256, as the server records it. */
export const fingerprint = (pem: string): string =>
  createHash('sha256').update(Buffer.from(pem.split('\n').filter((l) => l && !l.startsWith('-----')).join(''), 'base64')).digest('hex');

/** istio-agent's output: cert-chain.pem, key.pem, root-cert.pem in `dir`. */
export function writeAgentFiles(dir: string, client: Pair, root: Pair): void {
  mkdirSync(dir, { recursive: true });
  copyFileSync(client.certPath, join(dir, 'cert-chain.pem'));
  copyFileSync(client.keyPath, join(dir, 'key.pem'));
  copyFileSync(root.certPath, join(dir, 'root-cert.pem'));
}

