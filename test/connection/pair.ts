/**
 * Two connection cores talking over an in-memory duplex pair, each run by a real connection
 * machine: the engine's parts tested without a socket or a process.
 */
import { createActor } from 'xstate';
import { connectionMachine } from '../../machines/connection.machine.js';
import { Connection } from '../../src/connection/connection.js';
import { ConnectionCore, type CoreOptions } from '../../src/connection/core.js';
import { onCleanup, waitUntil } from '../helpers/cleanup.js';
import { duplexPair } from '../helpers/duplex-pair.js';

const defaults: Omit<CoreOptions, 'role'> = {
  handlers: undefined,
  maxMessageSize: 1024 * 1024,
  replyTimeout: 5000,
  checksum: false,
  frameTimeout: 30_000,
  maxWriteBuffer: 8 * 1024 * 1024,
  maxInFlight: 128,
  keepalive: undefined,
};

export async function corePair(server: Partial<CoreOptions> = {}, client: Partial<CoreOptions> = {}, highWaterMark?: number) {
  const [a, b] = duplexPair(highWaterMark);
  const make = (role: 'client' | 'server', stream: typeof a, options: Partial<CoreOptions>) => {
    const core = new ConnectionCore(stream, { ...defaults, ...options, role });
    const connection = new Connection(core, role);
    const actor = createActor(connectionMachine, {
      input: { id: role, role, transport: core, pending: core.pending, handshakeTimeout: 5000, closeTimeout: 1000 },
    });
    actor.start();
    onCleanup(() => connection.destroy());
    return { core, connection };
  };
  const s = make('server', a, server);
  const c = make('client', b, client);
  await waitUntil(() => s.core.phase === 'active' && c.core.phase === 'active', 'both sides active');
  return { server: s, client: c, streams: { server: a, client: b } };
}
