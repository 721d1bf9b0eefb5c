/** The live dashboard: `serveDashboard(server | connection, { port, host })`. */
export { serveDashboard, type Dashboard, type DashboardOptions } from './server.js';
export type { DashboardState } from './source.js';
export { machineGraph, type GraphState, type GraphTransition, type MachineGraph } from '../machine-graph.js';
export { machineSvg, type SvgOptions } from './layout.js';
