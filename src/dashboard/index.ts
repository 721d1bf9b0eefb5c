/**
 * The live dashboard: `serveDashboard(server | connection, { port, host })`.
 *
 * Its code (the HTTP server, the page, the diagram layout) loads on the first call, not with the
 * library: a daemon that never serves a dashboard does not keep ~0.3 MB of it on its heap.
 */
import type { Connection } from '../connection/connection.js';
import type { Server } from '../server.js';
import type { Dashboard, DashboardOptions } from './server.js';

export type { Dashboard, DashboardOptions } from './server.js';
export type { DashboardState } from './source.js';
export { machineGraph, type GraphState, type GraphTransition, type MachineGraph } from '../machine-graph.js';

/** See ./server.ts's `serveDashboard` (loaded on first use). */
export async function serveDashboard(target: Server | Connection, options: DashboardOptions = {}): Promise<Dashboard> {
  const dashboard = await import('./server.js');
  return dashboard.serveDashboard(target, options);
}

