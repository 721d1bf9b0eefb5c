// node-ipc, its current release (14.0.0, pinned). Read before use, as every node-ipc release must
// be (10.1.1–10.1.3 and 11.x carried protestware): 14.0.0 has no install script, depends only on
// event-pubsub 6.1.1 (→ strong-type 2.0.0), js-message 3.1.0 and js-queue 3.1.0 (→ easy-stack
// 2.1.0), and touches the file system only for its socket and socket directory. It declares
// Node >= 22.13 but runs on Node 20 for what the benchmark uses (Unix socket, JSON events).
import ipcModule from 'node-ipc';
import { nodeIpcPeer } from '../lib/node-ipc-peer.mjs';

export const name = 'node-ipc 14';
export const label = 'node-ipc (current release)';
export const packages = ['node-ipc'];
export const { serve, connect } = nodeIpcPeer(ipcModule);
