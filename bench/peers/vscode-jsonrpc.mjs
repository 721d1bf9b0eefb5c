// vscode-jsonrpc over a Unix socket (JSON-RPC 2.0, Content-Length framing). JSON cannot carry
// bytes, so the S3 payload travels as a base64 string (encoded and decoded inside the timing).
import net from 'node:net';
import rpc from 'vscode-jsonrpc/node';
import { fromBase64, handleAdd, toBase64 } from '../lib/common.mjs';

export const name = 'vscode-jsonrpc';
export const label = 'vscode-jsonrpc';
export const packages = ['vscode-jsonrpc'];

const fromWire = (p) => (p.data === undefined ? p : { ...p, data: fromBase64(p.data) });
const toWire = (msg) => {
  const { type, data, ...rest } = msg;
  return data === undefined ? rest : { ...rest, data: toBase64(data) };
};

export async function serve(path) {
  const connections = new Set();
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    const connection = rpc.createMessageConnection(new rpc.SocketMessageReader(socket), new rpc.SocketMessageWriter(socket));
    connection.onRequest('add', (params) => handleAdd(fromWire(params)));
    connection.onError(() => {});
    connection.onClose(() => connections.delete(connection));
    connections.add(connection);
    connection.listen();
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ path, backlog: 4096 }, resolve);
  });
  return {
    connections: () => connections.size,
    netServer: () => server,
    close: () =>
      new Promise((resolve) => {
        for (const c of connections) c.dispose();
        server.close(() => resolve());
      }),
  };
}

export async function connect(path) {
  const socket = await new Promise((resolve, reject) => {
    const s = net.connect({ path });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
  socket.on('error', () => {});
  const connection = rpc.createMessageConnection(new rpc.SocketMessageReader(socket), new rpc.SocketMessageWriter(socket));
  connection.onError(() => {});
  connection.listen();
  return {
    ask: (msg) => connection.sendRequest(msg.type, toWire(msg)),
    close: () => {
      connection.dispose();
      socket.destroy();
    },
  };
}
