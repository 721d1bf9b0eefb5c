/**
 * The CLI takes transport names: `call` and `info` against a daemon over tls:// (with the
 * --tls-* files) and over nats://, and refuses plain tcp:// off loopback.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { listen } from '../../src/index.js';
import { makePki, type Pki } from '../helpers/certs.js';
import { cleanup, onCleanup } from '../helpers/cleanup.js';
import { startNatsServer, type NatsServer } from '../helpers/nats-server.js';

const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));

function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

let pki: Pki;
let nats: NatsServer;
beforeAll(async () => {
  pki = makePki();
  nats = await startNatsServer();
});
afterAll(async () => {
  await nats?.stop();
});
afterEach(cleanup);

type Api = { add(e: { a: number; b: number }): number };

describe('the CLI over the network transports', () => {
  it('call and info over tls:// with client certificates from files', async () => {
    const server = await listen<Api>('tls://127.0.0.1:0', {
      tls: { key: pki.server.key, cert: pki.server.cert, ca: pki.ca },
      handlers: { add: ({ a, b }) => a + b },
      introspection: true,
    });
    onCleanup(() => server.close({ timeout: 1000 }));
    const files = ['--tls-cert', path.join(pki.dir, 'client.crt'), '--tls-key', path.join(pki.dir, 'client.key'), '--tls-ca', path.join(pki.dir, 'ca.crt')];
    const call = await cli('call', server.name, '{"type":"add","a":40,"b":2}', ...files);
    expect(call.stderr).toBe('');
    expect(call.stdout.trim()).toBe('42');
    const info = await cli('info', server.name, '--json', ...files);
    expect(info.code).toBe(0);
    expect(JSON.parse(info.stdout)).toMatchObject({ server: expect.anything() });
    // Without a client certificate the daemon refuses the TLS handshake.
    const refused = await cli('call', server.name, '{"type":"add","a":1,"b":1}', '--tls-ca', path.join(pki.dir, 'ca.crt'), '--timeout', '3000');
    expect(refused.code).not.toBe(0);
  });

  it('call over nats://', async () => {
    const name = nats.url('cli');
    const server = await listen<Api>(name, { handlers: { add: ({ a, b }) => a + b } });
    onCleanup(() => server.close({ timeout: 1000 }));
    const call = await cli('call', name, 'add', '{"a":2,"b":3}');
    expect(call.stderr).toBe('');
    expect(call.stdout.trim()).toBe('5');
  });

  it('plain tcp:// to a non-loopback address is refused before anything is sent', async () => {
    const result = await cli('call', 'tcp://192.0.2.7:7400', '{"type":"add"}', '--timeout', '500');
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/INSECURE_NETWORK/);
  });
});
