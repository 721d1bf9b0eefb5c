// The node-ipc peer, shared by both releases measured (see peers/node-ipc.mjs and
// peers/node-ipc-9.mjs): node-ipc has events, not request/reply, so the ask carries an id and
// the server emits a reply event with it. Messages are JSON with a '\f' delimiter; JSON cannot
// carry bytes, so the S3 payload travels as base64 (encoded and decoded inside the timing).
import { fromBase64, handleAdd, toBase64 } from './common.mjs';

/** `serve` and `connect` for the node-ipc module `ipcModule` (its default export). */
export function nodeIpcPeer(ipcModule) {
  const { IPC } = ipcModule;

  function configure(ipc, options = {}) {
    ipc.config.silent = true;
    ipc.config.maxConnections = options.maxConnections ?? 100000;
    ipc.config.retry = 50;
    // Later releases bound a message and the bytes queued per socket (1 MiB and 8 MiB by
    // default): raised so that S3's base64 payload (1.4 MB) fits; 9.2.1 has no such limits.
    ipc.config.maxMessageSize = 8 * 1024 * 1024;
    ipc.config.maxPendingBytes = 64 * 1024 * 1024;
    return ipc;
  }

  async function serve(path, options = {}) {
    const ipc = configure(new IPC(), options);
    ipc.config.id = 'bench';
    await new Promise((resolve) => {
      ipc.serve(path, resolve);
      ipc.server.start();
    });
    ipc.server.on('add', (data, socket) => {
      const msg = data.data === undefined ? data : { ...data, data: fromBase64(data.data) };
      ipc.server.emit(socket, 'r', { id: data.id, r: handleAdd(msg) });
    });
    return {
      connections: () => ipc.server.sockets.filter((s) => !s.destroyed).length,
      netServer: () => ipc.server.server,
      close: async () => {
        for (const s of ipc.server.sockets) s.destroy();
        ipc.server.stop();
      },
    };
  }

  let clientCounter = 0;
  async function connect(path, options = {}) {
    const ipc = configure(new IPC(), options);
    const id = `bench${clientCounter++}`;
    ipc.connectTo(id, path);
    const client = ipc.of[id];
    await new Promise((resolve, reject) => {
      client.on('connect', resolve);
      client.on('error', (e) => {
        if (e && e.code !== 'EAGAIN' && e.code !== 'ECONNREFUSED') reject(e);
      });
    });
    const pending = new Map();
    let nextId = 0;
    client.on('r', (reply) => {
      const resolve = pending.get(reply.id);
      pending.delete(reply.id);
      resolve(reply.r);
    });
    return {
      ask(msg) {
        const askId = nextId++;
        const { type, data, ...fields } = msg;
        client.emit(type, data === undefined ? { id: askId, ...fields } : { id: askId, ...fields, data: toBase64(data) });
        return new Promise((resolve) => pending.set(askId, resolve));
      },
      close: () => ipc.disconnect(id),
    };
  }

  return { serve, connect };
}
