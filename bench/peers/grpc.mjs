// @grpc/grpc-js on a unix: address: a unary method with msgpackr (de)serializers instead of
// protobuf (the service definition is built by hand, so no .proto and no codegen). Each client
// is its own channel (a local subchannel pool), so S4's clients are real separate connections.
import grpc from '@grpc/grpc-js';
import { Packr, Unpackr } from 'msgpackr';
import { handleAdd } from '../lib/common.mjs';

export const name = 'grpc-js';
export const label = '@grpc/grpc-js (unix:)';
export const packages = ['@grpc/grpc-js', 'msgpackr'];

const packr = new Packr({ useRecords: false, moreTypes: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
const serialize = (value) => packr.pack(value);
const deserialize = (buffer) => unpackr.unpack(buffer);

const definition = {
  add: {
    path: '/bench.Bench/Add',
    requestStream: false,
    responseStream: false,
    requestSerialize: serialize,
    requestDeserialize: deserialize,
    responseSerialize: serialize,
    responseDeserialize: deserialize,
  },
};
const BenchClient = grpc.makeGenericClientConstructor(definition, 'Bench');

const channelOptions = (maxMessageSize = 4 * 1024 * 1024) => ({
  'grpc.max_receive_message_length': maxMessageSize * 2,
  'grpc.max_send_message_length': maxMessageSize * 2,
});

export async function serve(path, options = {}) {
  const server = new grpc.Server(channelOptions(options.maxMessageSize));
  server.addService(definition, {
    add: (call, callback) => callback(null, handleAdd(call.request)),
  });
  await new Promise((resolve, reject) =>
    server.bindAsync(`unix:${path}`, grpc.ServerCredentials.createInsecure(), (error) => (error ? reject(error) : resolve())),
  );
  return {
    connections: () => undefined,
    close: () => new Promise((resolve) => server.tryShutdown(() => resolve())).then(() => server.forceShutdown()),
  };
}

export async function connect(path, options = {}) {
  const client = new BenchClient(`unix:${path}`, grpc.credentials.createInsecure(), {
    ...channelOptions(options.maxMessageSize),
    'grpc.use_local_subchannel_pool': 1,
  });
  await new Promise((resolve, reject) => client.waitForReady(Date.now() + 60000, (error) => (error ? reject(error) : resolve())));
  return {
    ask: (msg) => new Promise((resolve, reject) => client.add(msg, (error, result) => (error ? reject(error) : resolve(result)))),
    close: () => client.close(),
  };
}
