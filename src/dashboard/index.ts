/** The live dashboard: `serveDashboard(server | connection, { port, host })`. */
export { serveDashboard, type Dashboard, type DashboardOptions } from './server.js';
export type { DashboardState } from './source.js';
export { machineGraph, machineSvg, type GraphState, type GraphTransition, type MachineGraph, type SvgOptions } from './graph.js';
