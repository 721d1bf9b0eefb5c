/**
 * Who may introspect by default (src/introspection-access.ts): the rule for each kind of peer
 * identity. The second-uid cases run with real processes in test/reliability/access.test.ts; a
 * plain TCP peer (no identity at all) is tested here over a real loopback socket.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connect, listen } from '../src/index.js';
import { defaultIntrospectionAccess } from '../src/introspection-access.js';
import { cleanup, onCleanup } from './helpers/cleanup.js';

afterEach(cleanup);

const own = process.geteuid!();

describe('the default introspection rule', () => {
  it('by uid: the daemon’s own user and root only', () => {
    const allow = defaultIntrospectionAccess('/run/x.sock', 0o666);
    expect(allow({ uid: own })).toBe(true);
    expect(allow({ uid: 0 })).toBe(true);
    expect(allow({ uid: own === 1000 ? 1001 : 1000 })).toBe(false);
  });

  it('a verified TLS certificate is admitted', () => {
    expect(defaultIntrospectionAccess('tls://127.0.0.1:7400', undefined)({ fingerprint: 'AB:CD', subject: { CN: 'x' } })).toBe(true);
  });

  it('no identity: only on a local socket no other user can open', () => {
    expect(defaultIntrospectionAccess('/run/x.sock', undefined)({})).toBe(true); // default 0600
    expect(defaultIntrospectionAccess('/run/x.sock', 0o600)({})).toBe(true);
    expect(defaultIntrospectionAccess('/run/x.sock', 0o660)({})).toBe(process.platform === 'win32');
    expect(defaultIntrospectionAccess('/run/x.sock', 0o606)({})).toBe(process.platform === 'win32');
    expect(defaultIntrospectionAccess('tcp://127.0.0.1:7400', undefined)({ address: '127.0.0.1:5000' })).toBe(false);
    expect(defaultIntrospectionAccess('nats://127.0.0.1:4222/calc', undefined)({})).toBe(false);
  });
});

describe('over plain TCP on loopback (any local user can reach the port)', () => {
  it('introspection: true refuses a peer with no identity; introspection: { allow } can admit it', async () => {
    const closed = await listen<{ add(e: { a: number; b: number }): number }>('tcp://127.0.0.1:0', { handlers: { add: ({ a, b }) => a + b }, introspection: true });
    onCleanup(() => closed.close({ timeout: 500 }));
    const client = await connect(closed.name);
    onCleanup(() => client.destroy());
    expect(await client.ask({ type: 'add', a: 1, b: 2 } as never)).toBe(3);
    const refused = await client.ask({ type: '$converse.info' } as never).catch((error: unknown) => error);
    expect(refused).toMatchObject({ code: 'REMOTE_ERROR', remote: { code: 'ACCESS_DENIED' } });

    const open = await listen('tcp://127.0.0.1:0', { handlers: {}, introspection: { allow: () => true } });
    onCleanup(() => open.close({ timeout: 500 }));
    const admitted = await connect(open.name);
    onCleanup(() => admitted.destroy());
    expect(await admitted.ask({ type: '$converse.info' } as never)).toMatchObject({ library: 'interprocess-converse' });
  });
});
