/**
 * Certificates for TLS tests, made at test time with the `openssl` CLI: a CA, server certificates
 * with DNS, IP and SPIFFE URI SANs, client certificates, and an expired one. `hasOpenssl` lets a
 * suite skip with a message where the CLI is missing.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

export interface Pair {
  certPath: string;
  keyPath: string;
  cert: string;
  key: string;
}

export class Pki {
  readonly dir = mkdtempSync(join(tmpdir(), 'meshlet-pki-'));
  readonly ca: Pair;

  constructor() {
    this.ca = this.#selfSigned('ca', 'meshlet test CA');
  }

  #run(args: string[]): void {
    execFileSync('openssl', args, { cwd: this.dir, stdio: 'pipe' });
  }

  #selfSigned(name: string, cn: string): Pair {
    this.#run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`, '-subj', `/CN=${cn}`, '-days', '2']);
    return this.#pair(name);
  }

  #pair(name: string): Pair {
    const certPath = join(this.dir, `${name}.crt`);
    const keyPath = join(this.dir, `${name}.key`);
    return { certPath, keyPath, cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8') };
  }

  /** A certificate signed by the CA with the given SANs (`DNS:x`, `IP:1.2.3.4`, `URI:spiffe://…`). */
  issue(name: string, sans: string[], opts: { days?: number; clientAuth?: boolean } = {}): Pair {
    this.#run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
    const ext = join(this.dir, `${name}.ext`);
    writeFileSync(ext, `subjectAltName=${sans.join(',')}\nextendedKeyUsage=${opts.clientAuth ? 'clientAuth' : 'serverAuth'}\n`);
    this.#run(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-out', `${name}.crt`, '-days', String(opts.days ?? 2), '-extfile', ext]);
    return this.#pair(name);
  }

  dispose(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
