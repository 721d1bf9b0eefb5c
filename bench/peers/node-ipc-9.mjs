// node-ipc 9.2.1 (pinned, installed as the npm alias node-ipc-9): the release most projects
// still depend on, measured beside the current one. Read before use: 9.2.1 has no install
// script and depends only on event-pubsub 4.3.0, js-message 1.0.7 and js-queue 2.0.2.
import ipcModule from 'node-ipc-9';
import { nodeIpcPeer } from '../lib/node-ipc-peer.mjs';

export const name = 'node-ipc 9.2.1';
export const label = 'node-ipc 9.2.1';
export const packages = ['node-ipc-9'];
export const { serve, connect } = nodeIpcPeer(ipcModule);
