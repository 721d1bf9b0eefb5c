// node-ipc 9.2.1 (pinned; read before use: the protestware releases were 10.1.1–10.1.3 and 11.x,
// 9.2.1 has only event-pubsub 4.3.0, js-message 1.0.7 and js-queue 2.0.2 as dependencies and no
// install script). node-ipc has events, not request/reply: the ask carries an id and the server
// emits a reply event with it. Messages are JSON with a '\f' delimiter; the S3 payload is base64.
import ipcModule from 'node-ipc';
import { fromBase64, handleAdd, toBase64 } from '../lib/common.mjs';

export const name = 'node-ipc';
export const label = 'node-ipc';
export const packages = ['node-ipc'];

const { IPC } = ipcModule;

function quiet(ipc, options = {}) {
  ipc.config.silent = true;
  ipc.config.maxConnections = options.maxConnections ?? 100000;
  ipc.config.retry = 50;
  return ipc;
}

export async function serve(path, options = {}) {
  const ipc = quiet(new IPC(), options);
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
export async function connect(path, options = {}) {
  const ipc = quiet(new IPC(), options);
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
