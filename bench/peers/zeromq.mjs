// zeromq (libzmq through its prebuilt N-API addon, shipped inside the npm package) over ipc://.
// The server is a ROUTER, each client a DEALER; bodies are msgpackr, as in the raw baseline.
import * as zmq from 'zeromq';
import { Packr, Unpackr } from 'msgpackr';
import { handleAdd } from '../lib/common.mjs';

export const name = 'zeromq';
export const label = 'zeromq (ipc://)';
export const packages = ['zeromq', 'msgpackr'];

const packr = new Packr({ useRecords: false, moreTypes: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

/**
 * zeromq.js allows one send in progress per socket (EBUSY otherwise): sends go straight to the
 * socket while none is pending, else into a FIFO drained as each completes.
 */
function sender(socket, onError) {
  const queue = [];
  let busy = false;
  const drain = () => {
    if (queue.length === 0) {
      busy = false;
      return;
    }
    socket.send(queue.shift()).then(drain, onError);
  };
  return (message) => {
    if (busy) {
      queue.push(message);
      return;
    }
    busy = true;
    socket.send(message).then(drain, onError);
  };
}

let context;
function sharedContext() {
  // The default context allows 1023 sockets; S4 opens more.
  context ??= new zmq.Context({ maxSockets: Math.min(65536, zmq.context.maxSocketsLimit ?? 65536), blocky: false });
  return context;
}

export async function serve(path) {
  const router = new zmq.Router({ context: sharedContext(), linger: 0, receiveHighWaterMark: 0, sendHighWaterMark: 0 });
  let live = 0;
  router.events.on('accept', () => live++);
  router.events.on('disconnect', () => live--);
  await router.bind(`ipc://${path}`);
  const send = sender(router, (error) => {
    if (!router.closed) process.stderr.write(`zeromq server send failed: ${error.message}\n`);
  });
  (async () => {
    try {
      for await (const [identity, body] of router) {
        const [id, msg] = unpackr.unpack(body);
        send([identity, packr.pack([id, handleAdd(msg)])]);
      }
    } catch (error) {
      if (!router.closed) throw error;
    }
  })();
  return {
    connections: () => live,
    close: async () => router.close(),
  };
}

export async function connect(path) {
  const dealer = new zmq.Dealer({ context: sharedContext(), linger: 0 });
  const handshake = new Promise((resolve, reject) => {
    dealer.events.on('handshake', () => resolve());
    dealer.events.on('handshake:error:protocol', (e) => reject(e.error));
    dealer.events.on('handshake:error:other', (e) => reject(e.error));
  });
  dealer.connect(`ipc://${path}`);
  await handshake;
  const pending = new Map();
  let nextId = 0;
  const send = sender(dealer, (error) => {
    for (const p of pending.values()) p.reject(error);
    pending.clear();
  });
  (async () => {
    try {
      for await (const [body] of dealer) {
        const [id, result] = unpackr.unpack(body);
        const p = pending.get(id);
        pending.delete(id);
        p.resolve(result);
      }
    } catch (error) {
      if (!dealer.closed) throw error;
    }
  })();
  return {
    ask(msg) {
      const id = nextId;
      nextId = (nextId + 1) >>> 0;
      const reply = new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
      send(packr.pack([id, msg]));
      return reply;
    },
    close: () => dealer.close(),
  };
}
