import type { AnyStateMachine } from 'xstate';

/**
 * A state machine's diagram, drawn from its definition: the top-level states and the
 * transitions between them are read from `machine.root` (the parsed `createMachine` config), so
 * the picture follows the machine if the machine changes.
 */

export interface GraphState {
  key: string;
  initial: boolean;
  final: boolean;
}

export interface GraphTransition {
  source: string;
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
  states: GraphState[];
  transitions: GraphTransition[];
}

interface StateNodeLike {
  key: string;
  type: string;
  states: Record<string, StateNodeLike>;
  transitions: Map<string, Array<TransitionLike>>;
  always?: TransitionLike[];
  after: Array<TransitionLike & { delay: unknown }>;
  initial?: { target?: StateNodeLike[] };
}

interface TransitionLike {
  target?: StateNodeLike[];
  guard?: unknown;
  eventType: string;
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
  return event;
}

/** The top-level states of `machine` and the transitions that change state (self-transitions and targetless ones are left out). */
export function machineGraph(machine: AnyStateMachine): MachineGraph {
  const root = machine.root as unknown as StateNodeLike;
  const initialKey = root.initial?.target?.[0]?.key;
  const nodes = Object.values(root.states);
  const states: GraphState[] = nodes.map((node) => ({ key: node.key, initial: node.key === initialKey, final: node.type === 'final' }));
  const transitions: GraphTransition[] = [];
  const add = (node: StateNodeLike, definition: TransitionLike, kind: GraphTransition['kind'], label: string): void => {
    const target = definition.target?.[0];
    if (target === undefined || target === node || !nodes.includes(target)) return;
    const guard = guardName(definition.guard);
    transitions.push({
      source: node.key,
      target: target.key,
      event: definition.eventType,
      label: guard === undefined ? label : `${label} [${guard}]`,
      kind,
      ...(guard === undefined ? {} : { guard }),
    });
  };
  for (const node of nodes) {
    const delayed = new Map(node.after.map((after) => [after.eventType, after]));
    for (const [eventType, definitions] of node.transitions) {
      const after = delayed.get(eventType);
      for (const definition of definitions) {
        if (after !== undefined) add(node, definition, 'after', `after ${typeof after.delay === 'number' ? `${after.delay} ms` : String(after.delay)}`);
        else add(node, definition, 'event', shortEvent(eventType));
      }
    }
    for (const definition of node.always ?? []) add(node, definition, 'always', 'always');
  }
  return { id: (machine as { id: string }).id, states, transitions };
}

// ── Layout and SVG ────────────────────────────────────────────────────────────────────────

export interface SvgOptions {
  /** Write the events on the edges (else they are only in each edge's tooltip). @default true */
  labels?: boolean;
  /** Prefix for element ids (arrow markers), unique per diagram kind on a page. */
  idPrefix?: string;
  /** Extra class on the <svg> element. */
  className?: string;
}

const NODE_W = 112;
const NODE_H = 36;
const GAP_X = 180;
/** Approximate width of one character of an edge label (10.5px sans-serif), for spacing. */
const CHAR_W = 6.1;
const GAP_Y = 64;
const LINE_H = 13;

function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Each state's column: the longest path to it from the initial state over forward edges. */
function layers(graph: MachineGraph): Map<string, number> {
  const out = new Map<string, GraphTransition[]>();
  for (const t of graph.transitions) {
    if (!out.has(t.source)) out.set(t.source, []);
    out.get(t.source)!.push(t);
  }
  // Depth-first order from the initial state; edges into a state on the stack are back edges.
  const order: string[] = [];
  const seen = new Set<string>();
  const onStack = new Set<string>();
  const back = new Set<GraphTransition>();
  const visit = (key: string): void => {
    seen.add(key);
    onStack.add(key);
    for (const t of out.get(key) ?? []) {
      if (onStack.has(t.target)) back.add(t);
      else if (!seen.has(t.target)) visit(t.target);
    }
    onStack.delete(key);
    order.unshift(key);
  };
  const initial = graph.states.find((s) => s.initial)?.key ?? graph.states[0]?.key;
  if (initial !== undefined) visit(initial);
  for (const s of graph.states) if (!seen.has(s.key)) visit(s.key);
  const layer = new Map<string, number>(graph.states.map((s) => [s.key, 0]));
  for (const key of order) {
    for (const t of out.get(key) ?? []) {
      if (back.has(t)) continue;
      layer.set(t.target, Math.max(layer.get(t.target)!, layer.get(key)! + 1));
    }
  }
  return layer;
}

/** Group the labels of parallel transitions, a few per line (one per line puts a guard on a line of its own). */
function labelLines(labels: string[], perLine: number): string[] {
  const lines: string[] = [];
  if (perLine === 1) {
    for (const label of labels) {
      const guard = label.indexOf(' [');
      if (guard > 0) lines.push(label.slice(0, guard), label.slice(guard + 1));
      else lines.push(label);
    }
    return lines;
  }
  for (let i = 0; i < labels.length; i += perLine) lines.push(labels.slice(i, i + perLine).join(', '));
  return lines;
}

/**
 * Draw `graph` as an SVG string: states left to right by layer, an edge per (source, target)
 * pair carrying all its events. Each state is `<g class="node" data-state="KEY">`, so a page
 * can highlight the current one by adding a class.
 */
export function machineSvg(graph: MachineGraph, options: SvgOptions = {}): string {
  const labels = options.labels ?? true;
  const prefix = options.idPrefix ?? graph.id;
  const layer = layers(graph);
  const columns = new Map<number, string[]>();
  for (const s of graph.states) {
    const l = layer.get(s.key)!;
    if (!columns.has(l)) columns.set(l, []);
    columns.get(l)!.push(s.key);
  }
  const tallest = Math.max(1, ...[...columns.values()].map((c) => c.length));
  const row = new Map<string, number>();
  for (const keys of columns.values()) keys.forEach((key, i) => row.set(key, i - (keys.length - 1) / 2));

  // One edge per (source, target).
  const edges = new Map<string, { source: string; target: string; labels: string[]; events: string[] }>();
  for (const t of graph.transitions) {
    const id = `${t.source}\u0000${t.target}`;
    if (!edges.has(id)) edges.set(id, { source: t.source, target: t.target, labels: [], events: [] });
    const edge = edges.get(id)!;
    if (!edge.labels.includes(t.label)) edge.labels.push(t.label);
    edge.events.push(t.event);
  }
  const isStraight = (edge: { source: string; target: string }): boolean =>
    layer.get(edge.target)! - layer.get(edge.source)! === 1 && row.get(edge.source) === row.get(edge.target);
  // Columns far enough apart for the labels written along straight edges (one per line).
  let widest = 0;
  if (labels) for (const edge of edges.values()) if (isStraight(edge)) for (const l of labelLines(edge.labels, 1)) widest = Math.max(widest, l.length);
  const gapX = Math.max(GAP_X, NODE_W + 24 + Math.ceil(widest * CHAR_W));
  const pos = new Map<string, { x: number; y: number }>();
  for (const s of graph.states) pos.set(s.key, { x: layer.get(s.key)! * gapX, y: row.get(s.key)! * GAP_Y });

  const parts: string[] = [];
  let minX = -NODE_W / 2 - 24;
  let maxX = Math.max(...[...pos.values()].map((p) => p.x)) + NODE_W / 2 + 8;
  let minY = -((tallest - 1) / 2) * GAP_Y - NODE_H / 2 - 8;
  let maxY = -minY;
  const perLine = 2;
  let arcIndex = 0;
  for (const edge of edges.values()) {
    const a = pos.get(edge.source)!;
    const b = pos.get(edge.target)!;
    const span = layer.get(edge.target)! - layer.get(edge.source)!;
    const straight = isStraight(edge);
    const lines = labels ? labelLines(edge.labels, straight ? 1 : perLine) : [];
    const title = `${edge.source} → ${edge.target}: ${edge.labels.join(', ')}`;
    let path: string;
    let lx: number;
    let ly: number;
    let anchorBelow = false;
    if (straight) {
      path = `M ${a.x + NODE_W / 2} ${a.y} L ${b.x - NODE_W / 2 - 2} ${b.y}`;
      lx = (a.x + b.x) / 2;
      ly = a.y - 7;
      minY = Math.min(minY, ly - lines.length * LINE_H);
    } else if (span >= 1) {
      const up = arcIndex++ % 2 === 0;
      const sign = up ? -1 : 1;
      const h = 40 + 26 * (Math.abs(span) - 1) + (labels ? 0 : -10);
      const sy = a.y + (sign * NODE_H) / 2;
      const ty = b.y + (sign * NODE_H) / 2;
      const peak = up ? Math.min(sy, ty) - h : Math.max(sy, ty) + h;
      path = `M ${a.x} ${sy} C ${a.x} ${peak}, ${b.x} ${peak}, ${b.x} ${ty + sign * 2}`;
      lx = (a.x + b.x) / 2;
      // A cubic with both controls at `peak` reaches 3/4 of the way there.
      const apex = sy + (peak - sy) * 0.75;
      ly = up ? apex - 6 : apex + 14;
      anchorBelow = !up;
      minY = Math.min(minY, apex - 10 - (up ? lines.length * LINE_H : 0));
      maxY = Math.max(maxY, apex + 10 + (up ? 0 : lines.length * LINE_H));
    } else {
      // A back edge: a wide arc below.
      const h = 50 + 26 * Math.abs(span);
      const sy = a.y + NODE_H / 2;
      const ty = b.y + NODE_H / 2;
      const peak = Math.max(sy, ty) + h;
      path = `M ${a.x} ${sy} C ${a.x} ${peak}, ${b.x} ${peak}, ${b.x} ${ty + 2}`;
      lx = (a.x + b.x) / 2;
      const apex = sy + (peak - sy) * 0.75;
      ly = apex + 14;
      anchorBelow = true;
      maxY = Math.max(maxY, apex + 10 + lines.length * LINE_H);
    }
    const text = lines
      .map((line, i) => {
        const dy = anchorBelow ? i * LINE_H : -(lines.length - 1 - i) * LINE_H;
        return `<tspan x="${lx}" y="${ly + dy}">${escapeXml(line)}</tspan>`;
      })
      .join('');
    const width = (Math.max(0, ...lines.map((l) => l.length)) * CHAR_W) / 2;
    minX = Math.min(minX, lx - width);
    maxX = Math.max(maxX, lx + width);
    parts.push(
      `<g class="edge" data-source="${escapeXml(edge.source)}" data-target="${escapeXml(edge.target)}"><title>${escapeXml(title)}</title>` +
        `<path d="${path}" marker-end="url(#${escapeXml(prefix)}-arrow)"/>` +
        (text ? `<text text-anchor="middle">${text}</text>` : '') +
        `</g>`,
    );
  }

  for (const s of graph.states) {
    const p = pos.get(s.key)!;
    const x = p.x - NODE_W / 2;
    const y = p.y - NODE_H / 2;
    let node = `<g class="node${s.final ? ' final' : ''}${s.initial ? ' initial' : ''}" data-state="${escapeXml(s.key)}"><title>${escapeXml(s.key)}${s.final ? ' (final)' : ''}</title>`;
    node += `<rect x="${x}" y="${y}" width="${NODE_W}" height="${NODE_H}" rx="9"/>`;
    if (s.final) node += `<rect class="inner" x="${x + 3}" y="${y + 3}" width="${NODE_W - 6}" height="${NODE_H - 6}" rx="7"/>`;
    node += `<text x="${p.x}" y="${p.y + 4.5}" text-anchor="middle">${escapeXml(s.key)}</text></g>`;
    if (s.initial) {
      parts.push(`<g class="start"><circle cx="${x - 20}" cy="${p.y}" r="4"/><path d="M ${x - 16} ${p.y} L ${x - 3} ${p.y}" marker-end="url(#${escapeXml(prefix)}-arrow)"/></g>`);
    }
    parts.push(node);
  }

  const pad = 6;
  const vx = Math.floor(minX - pad);
  const vy = Math.floor(minY - pad);
  const vw = Math.ceil(maxX - minX + 2 * pad);
  const vh = Math.ceil(maxY - minY + 2 * pad);
  const defs =
    `<defs><marker id="${escapeXml(prefix)}-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">` +
    `<path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead"/></marker></defs>`;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" class="machine${options.className ? ` ${escapeXml(options.className)}` : ''}" data-machine="${escapeXml(graph.id)}" ` +
    `viewBox="${vx} ${vy} ${vw} ${vh}" width="${vw}" height="${vh}" role="img" aria-label="${escapeXml(graph.id)} state machine">` +
    defs +
    parts.join('') +
    `</svg>`
  );
}
