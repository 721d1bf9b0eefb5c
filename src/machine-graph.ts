import type { AnyStateMachine, AnyStateNode } from 'xstate';
import { toDirectedGraph, type DirectedGraphNode } from './vendor/xstate-graph.js';

/**
 * A state machine's diagram, drawn from its definition: `@xstate/graph` (Stately's library)
 * walks the machine's state nodes, nested and parallel ones included, and their transitions;
 * this turns that into plain data (JSON: it travels over introspection for a daemon's session
 * machines), which dashboard/layout.ts lays out with elkjs and draws as SVG.
 */

export interface GraphState {
  /** The state's own key (`reading`). */
  key: string;
  /** Its keys from the top joined with dots (`active.reading`); for a top-level state, its key. */
  path: string;
  /** The path of the state it is nested in; absent for a top-level state. */
  parent?: string;
  type: 'atomic' | 'compound' | 'parallel' | 'final' | 'history';
  /** The state its parent enters first (a parallel state's regions are all entered, none is marked). */
  initial: boolean;
  final: boolean;
}

export interface GraphTransition {
  /** Path of the state the transition is defined on. */
  source: string;
  /** Path of the state it goes to (one entry per target when it has several). */
  target: string;
  /** The event as the machine names it (`TRANSPORT.CLOSED`, `xstate.after.closeTimeout…`). */
  event: string;
  /** Short form for the diagram: `CLOSED`, `after closeTimeout`, `always`, plus `[guard]`. */
  label: string;
  kind: 'event' | 'after' | 'always';
  guard?: string;
}

export interface MachineGraph {
  id: string;
  /** Every state, parents before their children, in the order the machine declares them. */
  states: GraphState[];
  transitions: GraphTransition[];
}

function guardName(guard: unknown): string | undefined {
  if (guard === undefined || guard === null) return undefined;
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'function') return guard.name || 'guard';
  if (typeof guard === 'object' && typeof (guard as { type?: unknown }).type === 'string') return (guard as { type: string }).type;
  return 'guard';
}

function shortEvent(event: string): string {
  if (event.startsWith('TRANSPORT.')) return event.slice('TRANSPORT.'.length);
  const actor = /^xstate\.(done|error)\.actor\.(.+)$/.exec(event);
  if (actor !== null) return `${actor[1]}: ${actor[2]}`;
  const done = /^xstate\.done\.state\.(.+)$/.exec(event);
  if (done !== null) return `done: ${done[1]}`;
  return event;
}

const pathOf = (node: AnyStateNode): string => node.path.join('.');

/**
 * The states of `machine` (nested and parallel ones included) and the transitions that change
 * state: self-transitions and targetless ones (which only act) are left out.
 */
export function machineGraph(machine: AnyStateMachine): MachineGraph {
  const states: GraphState[] = [];
  const transitions: GraphTransition[] = [];
  const add = (source: AnyStateNode, target: AnyStateNode, event: string, kind: GraphTransition['kind'], label: string, guard: unknown): void => {
    if (target === source) return;
    const name = guardName(guard);
    transitions.push({
      source: pathOf(source),
      target: pathOf(target),
      event,
      label: name === undefined ? label : `${label} [${name}]`,
      kind,
      ...(name === undefined ? {} : { guard: name }),
    });
  };
  const visit = (graph: DirectedGraphNode, parent: AnyStateNode | undefined): void => {
    const node = graph.stateNode;
    if (parent !== undefined) {
      const initial = parent.type === 'compound' && parent.initial.target.includes(node);
      states.push({ key: node.key, path: pathOf(node), ...(parent.parent === undefined ? {} : { parent: pathOf(parent) }), type: node.type, initial, final: node.type === 'final' });
    }
    const delays = new Map(node.after.map((after) => [after.eventType, after.delay]));
    for (const edge of graph.edges) {
      const { transition } = edge;
      if (transition.target === undefined || transition.target.length === 0) continue;
      const delay = delays.get(transition.eventType);
      if (delay !== undefined) add(node, edge.target, transition.eventType, 'after', `after ${typeof delay === 'number' ? `${delay} ms` : String(delay)}`, transition.guard);
      else add(node, edge.target, transition.eventType, 'event', shortEvent(transition.eventType), transition.guard);
    }
    // @xstate/graph's edges are the event transitions; eventless (`always`) ones are listed apart.
    for (const always of node.always ?? []) for (const target of always.target ?? []) add(node, target, '', 'always', 'always', always.guard);
    for (const child of graph.children) visit(child, node);
  };
  // The root state node, not the machine: no `instanceof` check against a second copy of xstate.
  visit(toDirectedGraph(machine.root), undefined);
  return { id: machine.id, states, transitions };
}

const graphs = new WeakMap<object, MachineGraph>();
const graphKeys = new WeakMap<object, string>();
let graphCount = 0;

/** `machineGraph(machine)`, computed once per machine definition. */
export function cachedMachineGraph(machine: AnyStateMachine): MachineGraph {
  let graph = graphs.get(machine);
  if (graph === undefined) {
    graph = machineGraph(machine);
    graphs.set(machine, graph);
  }
  return graph;
}

/** A name for `machine`'s graph, unique in this process (`id#n`: two machines may share an id). */
export function machineKey(machine: AnyStateMachine): string {
  let key = graphKeys.get(machine);
  if (key === undefined) {
    key = `${machine.id}#${++graphCount}`;
    graphKeys.set(machine, key);
  }
  return key;
}

/** The innermost states a state value is in: `{ busy: { upload: 'x', ui: 'q' } }` gives `busy.upload.x`, `busy.ui.q`. */
export function leafPaths(value: unknown, prefix = ''): string[] {
  if (typeof value === 'string') return [prefix + value];
  if (typeof value !== 'object' || value === null) return [];
  const paths: string[] = [];
  for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
    const inner = leafPaths(child, `${prefix}${key}.`);
    if (inner.length === 0) paths.push(prefix + key);
    else paths.push(...inner);
  }
  return paths;
}

/**
 * The paths of the states a state value is in, parents included: `{ active: { reading: 'idle' } }`
 * gives `active`, `active.reading`, `active.reading.idle`.
 */
export function activePaths(value: unknown, prefix = ''): string[] {
  if (typeof value === 'string') return [prefix + value];
  if (typeof value !== 'object' || value === null) return [];
  const paths: string[] = [];
  for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
    paths.push(prefix + key);
    paths.push(...activePaths(child, `${prefix}${key}.`));
  }
  return paths;
}
