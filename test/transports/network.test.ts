/**
 * TCP and TLS: the same conversation by host and port. Everything listens on 127.0.0.1; the
 * non-loopback addresses below are only parsed and refused, never bound or connected to.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, ConverseError, listen, type Connection, type ConnectOptions, type ListenOptions, type Server } from '../../src/index.js';
import { checkInsecureNetwork, isLoopbackIp, parseAddress } from '../../src/transport/address.js';
import { makePki, fingerprintOf, type Pki } from '../helpers/certs.js';
import { cleanup, onCleanup, rejectionOf, waitUntil } from '../helpers/cleanup.js';

type Api = { add(e: { a: number; b: number }): number; whoami(): { subject?: Record<string, string>; fingerprint?: string; uid?: number } };
type Back = { ping(): string };

afterEach(cleanup);

let pki: Pki;
beforeAll(() => {
  pki = makePki();
});
afterAll(() => {});

async function serve(name: string, options: ListenOptions<Api, Back> = {}): Promise<Server<Api, Back>> {
  const server = await listen<Api, Back>(name, {
    handlers: {
      add: ({ a, b }) => a + b,
      whoami: (_e, { connection }) => ({ ...connection.peer }),
    },
    ...options,
  });
  onCleanup(() => server.close({ timeout: 1000 }));
  return server;
}

async function dial(name: string, options: ConnectOptions<Back, Api> = {}): Promise<Connection<Back, Api>> {
  const connection = await connect<Api, Back>(name, { handlers: { ping: () => 'pong' }, connectTimeout: 5000, ...options });
  onCleanup(() => connection.destroy());
  return connection;
}

describe('names pick the transport', () => {
  it('parses tcp://, tls:// and nats:// names; anything else stays a local socket name', () => {
    expect(parseAddress('/tmp/x.sock')).toEqual({ kind: 'local', name: '/tmp/x.sock' });
    expect(parseAddress('relative/name')).toMatchObject({ kind: 'local' });
    expect(parseAddress('tcp://127.0.0.1:7400')).toMatchObject({ kind: 'tcp', host: '127.0.0.1', port: 7400 });
    expect(parseAddress('tls://[::1]:7400')).toMatchObject({ kind: 'tls', host: '::1', port: 7400 });
    expect(parseAddress('nats://127.0.0.1:4222/calc')).toMatchObject({ kind: 'nats', host: '127.0.0.1', port: 4222, service: 'calc' });
    expect(parseAddress('nats://localhost/calc.v2')).toMatchObject({ kind: 'nats', port: 4222, service: 'calc.v2' });
    for (const bad of ['udp://127.0.0.1:1', 'tcp://127.0.0.1', 'tcp://127.0.0.1:1/path', 'nats://127.0.0.1:4222', 'nats://127.0.0.1:4222/a.*', 'tls://user:pw@127.0.0.1:1', 'tcp://127.0.0.1:99999']) {
      expect(() => parseAddress(bad), bad).toThrow(ConverseError);
    }
  });

  it('knows loopback addresses from others', () => {
    for (const ip of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) expect(isLoopbackIp(ip), ip).toBe(true);
    for (const ip of ['0.0.0.0', '::', '10.0.0.1', '192.0.2.7', 'fe80::1', '::ffff:10.0.0.1']) expect(isLoopbackIp(ip), ip).toBe(false);
  });
});

describe('plain tcp:// is for loopback only, unless allowed', () => {
  it('refuses to listen on every interface (0.0.0.0) with INSECURE_NETWORK saying why', async () => {
    const error = await rejectionOf(listen('tcp://0.0.0.0:0'));
    expect(error).toBeInstanceOf(ConverseError);
    expect(error.code).toBe('INSECURE_NETWORK');
    expect(error.message).toMatch(/unencrypted/);
    expect(error.message).toMatch(/tls:\/\//);
    expect(error.message).toMatch(/allowInsecureNetwork/);
    expect((await rejectionOf(listen('tcp://[::]:0'))).code).toBe('INSECURE_NETWORK');
  });

  it('refuses to connect to a non-loopback address before any packet is sent', async () => {
    // 192.0.2.0/24 is TEST-NET-1: never routed. The check refuses before any socket exists.
    const error = await rejectionOf(connect('tcp://192.0.2.7:7400', { connectTimeout: 100 }));
    expect(error.code).toBe('INSECURE_NETWORK');
  });

  it('allowInsecureNetwork: true lifts the refusal (checked without binding anything)', async () => {
    const address = parseAddress('tcp://0.0.0.0:7400') as Extract<ReturnType<typeof parseAddress>, { kind: 'tcp' }>;
    await expect(checkInsecureNetwork(address, true, 'listen on')).resolves.toBeUndefined();
    await expect(checkInsecureNetwork(address, false, 'listen on')).rejects.toMatchObject({ code: 'INSECURE_NETWORK' });
    // tls:// is never refused for its address.
    const secure = parseAddress('tls://0.0.0.0:7400') as Extract<ReturnType<typeof parseAddress>, { kind: 'tls' }>;
    await expect(checkInsecureNetwork(secure, false, 'listen on')).resolves.toBeUndefined();
  });
});

describe('tcp:// on loopback', () => {
  it('port 0 gets a free port, named in server.name; the conversation runs both ways; peer has an address but no uid', async () => {
    const server = await serve('tcp://127.0.0.1:0');
    expect(server.name).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
    expect(server.name).not.toBe('tcp://127.0.0.1:0');
    const client = await dial(server.name);
    expect(await client.ask({ type: 'add', a: 2, b: 40 })).toBe(42);
    const accepted = await server.accept();
    expect(await accepted.ask({ type: 'ping' })).toBe('pong');
    expect(accepted.peer.uid).toBeUndefined();
    expect(accepted.peer.pid).toBeUndefined();
    expect(accepted.peer.address).toMatch(/^127\.0\.0\.1:\d+$/);
    await client.close();
  });

  it('maxConnectionsPerPeer does not apply: plain TCP verifies no identity, so only maxConnections bounds its peers', async () => {
    const server = await serve('tcp://127.0.0.1:0', { maxConnectionsPerPeer: 1, maxConnections: 2 });
    const clients = [await dial(server.name), await dial(server.name)];
    for (const client of clients) expect(await client.ask({ type: 'add', a: 1, b: 1 })).toBe(2);
    expect(server.actor.getSnapshot().context.identitySlots.held).toBe(0);
    expect((await rejectionOf(connect(server.name, { connectTimeout: 5000 }))).code).toBe('SERVER_FULL');
  });

  it('connecting where nothing listens fails at once with CONNECT_FAILED', async () => {
    const server = await serve('tcp://127.0.0.1:0');
    const name = server.name;
    await server.close();
    const started = performance.now();
    const error = await rejectionOf(connect(name, { connectTimeout: 20_000 }));
    expect(error.code).toBe('CONNECT_FAILED');
    expect(performance.now() - started).toBeLessThan(10_000);
  });

  it('an allow predicate refuses plain TCP peers: they carry no identity (fail closed)', async () => {
    const server = await serve('tcp://127.0.0.1:0', { allow: () => true });
    const error = await rejectionOf(connect(server.name, { connectTimeout: 2000 }));
    expect(error.code).toBe('ACCESS_DENIED');
  });
});

describe('tls:// with mutual authentication', () => {
  const serverTls = (): { key: string; cert: string; ca: string } => ({ key: pki.server.key, cert: pki.server.cert, ca: pki.ca });
  const clientTls = (who: 'client' | 'other' | 'stranger' = 'client'): { key: string; cert: string; ca: string } => ({ key: pki[who].key, cert: pki[who].cert, ca: pki.ca });

  it('the peer is the verified certificate: subject and fingerprint, no pid/uid/gid; on both ends', async () => {
    const server = await serve('tls://127.0.0.1:0', { tls: serverTls() });
    expect(server.name).toMatch(/^tls:\/\/127\.0\.0\.1:\d+$/);
    const client = await dial(server.name, { tls: clientTls() });
    expect(await client.ask({ type: 'add', a: 1, b: 2 })).toBe(3);
    const seen = await client.ask({ type: 'whoami' });
    expect(seen.subject).toMatchObject({ CN: 'worker-1', O: 'interprocess-converse tests' });
    expect(seen.fingerprint).toBe(fingerprintOf(pki.client.cert));
    expect(seen.uid).toBeUndefined();
    const accepted = await server.accept();
    expect(accepted.peer.pid).toBeUndefined();
    expect(accepted.peer.gid).toBeUndefined();
    // The client sees the server's certificate.
    expect(client.peer.subject?.CN).toBe('converse-server');
    expect(client.peer.fingerprint).toBe(fingerprintOf(pki.server.cert));
    expect(await accepted.ask({ type: 'ping' })).toBe('pong');
    await client.close();
  });

  it('works by host name (localhost) as by address: the certificate names both', async () => {
    const server = await serve('tls://127.0.0.1:0', { tls: serverTls() });
    const port = server.name.split(':').pop();
    const client = await dial(`tls://localhost:${port}`, { tls: clientTls() });
    expect(await client.ask({ type: 'add', a: 5, b: 5 })).toBe(10);
  });

  it('the allow predicate sees the certificate: worker-1 is let in, worker-2 gets ACCESS_DENIED', async () => {
    const seen: unknown[] = [];
    const server = await serve('tls://127.0.0.1:0', {
      tls: serverTls(),
      allow: (peer) => {
        seen.push(peer);
        return peer.subject?.CN === 'worker-1' && peer.fingerprint === fingerprintOf(pki.client.cert);
      },
    });
    const errors: ConverseError[] = [];
    server.on('connectionError', (error) => errors.push(error));
    const allowed = await dial(server.name, { tls: clientTls('client') });
    expect(await allowed.ask({ type: 'add', a: 1, b: 1 })).toBe(2);
    const refused = await rejectionOf(connect(server.name, { tls: clientTls('other'), connectTimeout: 5000 }));
    expect(refused.code).toBe('ACCESS_DENIED');
    expect(seen).toHaveLength(2);
    await waitUntil(() => errors.some((e) => e.code === 'ACCESS_DENIED' && /worker-2/.test(e.message)), 'the refusal names the certificate');
  });

  it('maxConnectionsPerPeer counts each client certificate by fingerprint: worker-1 past its cap gets SERVER_FULL, worker-2 keeps its share', async () => {
    const server = await serve('tls://127.0.0.1:0', { tls: serverTls(), maxConnectionsPerPeer: 2 });
    const errors: ConverseError[] = [];
    server.on('connectionError', (error) => errors.push(error));
    const slots = () => server.actor.getSnapshot().context.identitySlots;
    const worker1 = `sha256:${fingerprintOf(pki.client.cert)}`;
    const first = [await dial(server.name, { tls: clientTls('client') }), await dial(server.name, { tls: clientTls('client') })];
    const refused = await rejectionOf(connect(server.name, { tls: clientTls('client'), connectTimeout: 5000 }));
    expect(refused.code).toBe('SERVER_FULL');
    await waitUntil(() => errors.some((e) => e.code === 'SERVER_FULL' && /client certificate already has 2 connections \(maxConnectionsPerPeer\)/.test(e.message)), 'the refusal says which cap');
    // Another certificate is another peer, with its own share.
    const others = [await dial(server.name, { tls: clientTls('other') }), await dial(server.name, { tls: clientTls('other') })];
    for (const client of [...first, ...others]) expect(await client.ask({ type: 'add', a: 1, b: 1 })).toBe(2);
    expect([slots().countOf(worker1), slots().countOf(`sha256:${fingerprintOf(pki.other.cert)}`), slots().users]).toEqual([2, 2, 2]);
    // A slot comes back when its connection closes; the refused connection never held one.
    await first[0]!.close();
    await waitUntil(() => slots().countOf(worker1) === 1, 'worker-1 gave a slot back');
    const again = await dial(server.name, { tls: clientTls('client') });
    expect(await again.ask({ type: 'add', a: 2, b: 2 })).toBe(4);
    expect(slots().countOf(worker1)).toBe(2);
  });

  it('a client without a certificate, or with one from another CA, never gets a connection', async () => {
    const server = await serve('tls://127.0.0.1:0', { tls: serverTls() });
    const errors: ConverseError[] = [];
    server.on('connectionError', (error) => errors.push(error));
    for (const tls of [{ ca: pki.ca }, clientTls('stranger')]) {
      const error = await rejectionOf(connect(server.name, { tls, connectTimeout: 5000, handshakeTimeout: 5000 }));
      expect(error).toBeInstanceOf(ConverseError);
      expect(['ACCESS_DENIED', 'HANDSHAKE_FAILED', 'CONNECTION_CLOSED']).toContain(error.code);
    }
    await waitUntil(() => errors.filter((e) => e.code === 'HANDSHAKE_FAILED').length >= 2, 'two failed TLS handshakes reported');
    expect(server.connections.size).toBe(0);
  });

  it('a client that does not trust the server’s CA refuses it with ACCESS_DENIED', async () => {
    const server = await serve('tls://127.0.0.1:0', { tls: serverTls() });
    const error = await rejectionOf(connect(server.name, { tls: { ...clientTls(), ca: pki.strangerCa }, connectTimeout: 5000 }));
    expect(error.code).toBe('ACCESS_DENIED');
    expect(error.message).toMatch(/TLS/);
  });

  it('listen needs key and cert, and a CA while it verifies clients (the default)', async () => {
    expect((await rejectionOf(listen('tls://127.0.0.1:0'))).code).toBe('INVALID_ARGUMENT');
    const noCa = await rejectionOf(listen('tls://127.0.0.1:0', { tls: { key: pki.server.key, cert: pki.server.cert } }));
    expect(noCa.code).toBe('INVALID_ARGUMENT');
    expect(noCa.message).toMatch(/requestCert/);
    // requestCert: false: anyone may connect; the peer then has no certificate identity.
    const open = await serve('tls://127.0.0.1:0', { tls: { key: pki.server.key, cert: pki.server.cert, requestCert: false } });
    const client = await dial(open.name, { tls: { ca: pki.ca } });
    expect(await client.ask({ type: 'whoami' })).not.toHaveProperty('fingerprint');
  });
});
