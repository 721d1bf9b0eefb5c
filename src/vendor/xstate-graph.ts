/**
 * Stately's `@xstate/graph`, which the dashboard uses to read a machine's states and transitions.
 * It is a dev dependency, not a runtime one: `npm run build` replaces this module's output
 * (dist/src/vendor/xstate-graph.js) with @xstate/graph bundled in (xstate left as an
 * import, so the user's xstate is the one it reads), by scripts/bundle-vendor.mjs. Installed
 * users therefore need nothing beyond xstate; here, in the source tree, it comes from node_modules.
 */
export { toDirectedGraph, type DirectedGraphNode, type DirectedGraphEdge } from '@xstate/graph';
