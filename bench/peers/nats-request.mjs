// The NATS client's own request/reply, the way a NATS user would write S1/S2 without this library:
// the server subscribes to a subject (in a queue group) and answers each request; the client sends
// `nc.request()`. Bodies are msgpackr, as in the raw baseline. No handshake, no flow control, no
// ordering check, no liveness: what a bare request over NATS costs.
import { connect as natsConnect } from '@nats-io/transport-node';
import { Packr, Unpackr } from 'msgpackr';
import { handleAdd } from '../lib/common.mjs';

export const name = 'nats-request';
export const label = '@nats-io/transport-node request/reply';
export const packages = ['@nats-io/transport-node', 'msgpackr'];

const packr = new Packr({ useRecords: false, moreTypes: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

/** `nats://host:port/<service>` → the NATS server and the subject this peer uses. */
function where(address) {
  const url = new URL(address);
  if (url.protocol !== 'nats:') throw new Error(`the nats-request peer runs only over nats:// (got ${address})`);
  return { servers: `${url.hostname}:${url.port || 4222}`, subject: `bench.add.${url.pathname.slice(1)}` };
}

export async function serve(address) {
  const { servers, subject } = where(address);
  const nc = await natsConnect({ servers, name: 'bench-nats-request-server' });
  let served = 0;
  nc.subscribe(subject, {
    queue: 'bench',
    callback: (error, msg) => {
      if (error) return;
      const request = unpackr.unpack(msg.data);
      served++;
      msg.respond(request.type === 'add' ? packr.pack(handleAdd(request)) : packr.pack(null));
    },
  });
  await nc.flush();
  return {
    connections: () => (served > 0 ? 1 : 0),
    close: () => nc.drain(),
  };
}

export async function connect(address) {
  const { servers, subject } = where(address);
  const nc = await natsConnect({ servers, name: 'bench-nats-request-client' });
  return {
    ask: async (msg) => unpackr.unpack((await nc.request(subject, packr.pack(msg), { timeout: 60000 })).data),
    close: () => nc.close(),
  };
}
