import { afterEach, describe, expect, it } from 'vitest';
import { connect } from '../../src/index.js';
import { cleanup, onCleanup, socketName } from '../helpers/cleanup.js';
import { FrameReader, frame, handshakeBytes, rawServer } from '../helpers/raw.js';

/*
 * Frames that arrive in the same read as the WELCOME (docs/PROTOCOL.md §3.2 step 2: "frames may
 * follow the WELCOME immediately"). Found by the conformance kit (cases C5–C12): the client's
 * handlers ran before connect() had made the connection object, so `ctx.connection` was undefined.
 */

afterEach(cleanup);

describe('frames that come with the WELCOME', () => {
  it("a client's handler for an ASK sent with the WELCOME gets its connection in ctx.connection", async () => {
    const name = socketName();
    const replies: unknown[][] = [];
    await rawServer(name, (peer) => {
      const reader = new FrameReader((envelope) => replies.push(envelope));
      let helloSeen = false;
      peer.socket.on('data', (chunk: Buffer) => {
        if (!helloSeen) {
          helloSeen = true;
          // WELCOME and an ASK in one write.
          peer.write(Buffer.concat([handshakeBytes({ kind: 2 }), frame([1, 0, { type: 'who' }])]));
          if (chunk.length > 14) reader.push(chunk.subarray(14));
          return;
        }
        reader.push(chunk);
      });
    });
    let seen: unknown = 'not called';
    const connection = await connect(name, {
      handlers: {
        who: (_event: unknown, ctx: { connection: unknown }) => {
          seen = ctx.connection;
          return 'ok';
        },
      },
    });
    onCleanup(() => connection.destroy());
    await expect.poll(() => replies.length, { timeout: 5000 }).toBe(1);
    expect(replies[0]).toEqual([2, 0, 'ok']);
    expect(seen).toBe(connection);
  });
});
