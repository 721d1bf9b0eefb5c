/**
 * A throwaway PKI for TLS tests, made with the `openssl` command line (node:crypto cannot make
 * X.509 certificates): one CA, a server certificate for 127.0.0.1 and localhost, two client
 * certificates, and a certificate from a second CA that nobody trusts. Generated once per test
 * file into a private temporary directory, removed when the process exits.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface Pki {
  dir: string;
  ca: string;
  server: { key: string; cert: string };
  client: { key: string; cert: string };
  other: { key: string; cert: string };
  /** Signed by a CA that the server does not trust. */
  stranger: { key: string; cert: string };
  strangerCa: string;
}

function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function makeCa(dir: string, name: string): void {
  openssl(dir, 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${name}/O=interprocess-converse tests`);
}

function makeLeaf(dir: string, ca: string, name: string, subject: string, ext: string): void {
  fs.writeFileSync(path.join(dir, `${name}.ext`), ext);
  openssl(dir, 'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject);
  openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`);
}

export function makePki(): Pki {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ic-pki-'));
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  makeCa(dir, 'ca');
  makeCa(dir, 'stranger-ca');
  makeLeaf(dir, 'ca', 'server', '/CN=converse-server/O=interprocess-converse tests', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  makeLeaf(dir, 'ca', 'client', '/CN=worker-1/O=interprocess-converse tests', 'extendedKeyUsage=clientAuth\n');
  makeLeaf(dir, 'ca', 'other', '/CN=worker-2/O=interprocess-converse tests', 'extendedKeyUsage=clientAuth\n');
  makeLeaf(dir, 'stranger-ca', 'stranger', '/CN=worker-1/O=interprocess-converse tests', 'extendedKeyUsage=clientAuth\n');
  const read = (file: string): string => fs.readFileSync(path.join(dir, file), 'utf8');
  const pair = (name: string): { key: string; cert: string } => ({ key: read(`${name}.key`), cert: read(`${name}.crt`) });
  return { dir, ca: read('ca.crt'), server: pair('server'), client: pair('client'), other: pair('other'), stranger: pair('stranger'), strangerCa: read('stranger-ca.crt') };
}

/** The SHA-256 fingerprint of a PEM certificate, as node:tls prints it (`AB:CD:…`). */
export function fingerprintOf(certPem: string): string {
  return new X509Certificate(certPem).fingerprint256;
}
