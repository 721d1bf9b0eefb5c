import type { GraphState, MachineGraph } from '../machine-graph.js';
import { layoutEngine, type ElkEdge, type ElkNode } from '../vendor/elk.js';

/**
 * A machine graph laid out by elkjs (layered, left to right, nested states as boxes holding
 * their children, edges routed around them) and drawn as an SVG string. Each state is
 * `<g class="node" data-state="PATH">`, so the page lights the current one by adding a class.
 */

export interface SvgOptions {
  /** Write the events on the edges (else they are only in each edge's tooltip). @default true */
  labels?: boolean;
  /** Prefix for element ids (arrow markers), unique per diagram on a page. */
  idPrefix?: string;
  /** Extra class on the <svg> element. */
  className?: string;
}

const NODE_W = 112;
const NODE_H = 36;
/** Approximate width of one character: 13px state names, 10.5px edge labels (sans-serif). */
const NAME_CHAR_W = 7.4;
const LABEL_CHAR_W = 6.1;
const LINE_H = 13;
/** Room at the top of a box for its name, and on the left for the initial-state marker. */
const BOX_TOP = 30;
const MARKER = 24;

function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Parallel transitions' labels, one to a line (narrow labels keep the layers close). */
function labelLines(labels: string[]): string[] {
  return [...labels];
}

interface EdgeGroup {
  id: string;
  source: string;
  target: string;
  labels: string[];
  lines: string[];
}

/** Lay `graph` out and draw it. */
export async function machineSvg(graph: MachineGraph, options: SvgOptions = {}): Promise<string> {
  const labels = options.labels ?? true;
  const prefix = options.idPrefix ?? graph.id;
  const children = new Map<string | undefined, GraphState[]>();
  for (const s of graph.states) {
    if (!children.has(s.parent)) children.set(s.parent, []);
    children.get(s.parent)!.push(s);
  }
  const byPath = new Map(graph.states.map((s) => [s.path, s]));

  // One edge per (source, target), carrying all its events.
  const groups = new Map<string, EdgeGroup>();
  for (const t of graph.transitions) {
    if (!byPath.has(t.source) || !byPath.has(t.target)) continue;
    const key = `${t.source}\u0000${t.target}`;
    let group = groups.get(key);
    if (group === undefined) {
      group = { id: `e${groups.size}`, source: t.source, target: t.target, labels: [], lines: [] };
      groups.set(key, group);
    }
    if (!group.labels.includes(t.label)) group.labels.push(t.label);
  }
  for (const group of groups.values()) group.lines = labels ? labelLines(group.labels) : [];

  const elkNode = (s: GraphState): ElkNode => {
    const kids = children.get(s.path);
    if (kids === undefined || kids.length === 0) {
      return { id: s.path, width: Math.max(NODE_W, Math.ceil(s.key.length * NAME_CHAR_W) + 28), height: NODE_H };
    }
    const marker = kids.some((k) => k.initial) ? MARKER : 0;
    return {
      id: s.path,
      layoutOptions: { 'elk.padding': `[top=${BOX_TOP},left=${12 + marker},bottom=12,right=12]`, 'elk.direction': s.type === 'parallel' ? 'DOWN' : 'RIGHT' },
      children: kids.map(elkNode),
    };
  };
  const top = children.get(undefined) ?? [];
  const root: ElkNode = {
    id: '\u0000root',
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': 'RIGHT',
      'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
      'elk.edgeLabels.placement': 'CENTER',
      'elk.layered.considerModelOrder.strategy': 'NODES_AND_EDGES',
      'elk.layered.cycleBreaking.strategy': 'MODEL_ORDER',
      'elk.spacing.nodeNode': '28',
      'elk.layered.spacing.nodeNodeBetweenLayers': labels ? '24' : '30', 'elk.layered.spacing.edgeNodeBetweenLayers': '12',
      'elk.spacing.edgeLabel': '4',
      'elk.padding': `[top=8,left=${8 + MARKER},bottom=8,right=8]`,
    },
    children: top.map(elkNode),
    edges: [...groups.values()].map(
      (g): ElkEdge => ({
        id: g.id,
        sources: [g.source],
        targets: [g.target],
        labels: g.lines.length === 0 ? [] : [{ text: g.lines.join('\n'), width: Math.ceil(Math.max(...g.lines.map((l) => l.length)) * LABEL_CHAR_W) + 4, height: g.lines.length * LINE_H }],
      }),
    ),
  };
  const laid = await layoutEngine().layout(root);

  // Absolute positions: ELK gives each node's position relative to its parent.
  const boxes = new Map<string, { x: number; y: number; width: number; height: number }>();
  boxes.set(root.id, { x: 0, y: 0, width: laid.width ?? 0, height: laid.height ?? 0 });
  const place = (node: ElkNode, ox: number, oy: number): void => {
    for (const child of node.children ?? []) {
      const x = ox + (child.x ?? 0);
      const y = oy + (child.y ?? 0);
      boxes.set(child.id, { x, y, width: child.width ?? 0, height: child.height ?? 0 });
      place(child, x, y);
    }
  };
  place(laid, 0, 0);

  const parts: string[] = [];
  // States first (parents under their children), then edges over them.
  for (const s of graph.states) {
    const b = boxes.get(s.path);
    if (b === undefined) continue;
    const kids = children.get(s.path);
    const compound = kids !== undefined && kids.length > 0;
    const parentType = s.parent === undefined ? undefined : byPath.get(s.parent)?.type;
    const classes = ['node', compound ? 'compound' : 'atomic', s.type === 'parallel' ? 'parallel' : '', parentType === 'parallel' ? 'region' : '', s.final ? 'final' : '', s.initial ? 'initial' : '']
      .filter(Boolean)
      .join(' ');
    let node = `<g class="${classes}" data-state="${escapeXml(s.path)}"><title>${escapeXml(s.path)}${s.final ? ' (final)' : ''}${s.type === 'parallel' ? ' (parallel)' : ''}</title>`;
    node += `<rect x="${b.x}" y="${b.y}" width="${b.width}" height="${b.height}" rx="9"/>`;
    if (s.final) node += `<rect class="inner" x="${b.x + 3}" y="${b.y + 3}" width="${b.width - 6}" height="${b.height - 6}" rx="7"/>`;
    if (compound) node += `<text class="name" x="${b.x + 10}" y="${b.y + 19}">${escapeXml(s.key)}</text></g>`;
    else node += `<text x="${b.x + b.width / 2}" y="${b.y + b.height / 2 + 4.5}" text-anchor="middle">${escapeXml(s.key)}</text></g>`;
    parts.push(node);
    if (s.initial) {
      const cy = compound ? b.y + 15 : b.y + b.height / 2;
      parts.push(`<g class="start"><circle cx="${b.x - 20}" cy="${cy}" r="4"/><path d="M ${b.x - 16} ${cy} L ${b.x - 3} ${cy}" marker-end="url(#${escapeXml(prefix)}-arrow)"/></g>`);
    }
  }
  const groupById = new Map([...groups.values()].map((g) => [g.id, g]));
  const edges: ElkEdge[] = [];
  const collect = (node: ElkNode): void => {
    edges.push(...(node.edges ?? []));
    for (const child of node.children ?? []) collect(child);
  };
  collect(laid);
  for (const edge of edges) {
    const group = groupById.get(edge.id);
    if (group === undefined) continue;
    const origin = boxes.get(edge.container ?? root.id) ?? { x: 0, y: 0 };
    const d = (edge.sections ?? [])
      .map((section) => [section.startPoint, ...(section.bendPoints ?? []), section.endPoint].map((p, i) => `${i === 0 ? 'M' : 'L'} ${origin.x + p.x} ${origin.y + p.y}`).join(' '))
      .join(' ');
    let text = '';
    const label = edge.labels?.[0];
    if (label !== undefined && group.lines.length > 0) {
      const cx = origin.x + (label.x ?? 0) + (label.width ?? 0) / 2;
      const y0 = origin.y + (label.y ?? 0);
      text = `<text text-anchor="middle">${group.lines.map((line, i) => `<tspan x="${cx}" y="${y0 + (i + 1) * LINE_H - 3}">${escapeXml(line)}</tspan>`).join('')}</text>`;
    }
    const title = `${group.source} → ${group.target}: ${group.labels.join(', ')}`;
    parts.push(
      `<g class="edge" data-source="${escapeXml(group.source)}" data-target="${escapeXml(group.target)}"><title>${escapeXml(title)}</title>` +
        `<path d="${d}" marker-end="url(#${escapeXml(prefix)}-arrow)"/>${text}</g>`,
    );
  }

  const vw = Math.ceil(laid.width ?? 0);
  const vh = Math.ceil(laid.height ?? 0);
  const defs =
    `<defs><marker id="${escapeXml(prefix)}-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">` +
    `<path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead"/></marker></defs>`;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" class="machine${options.className ? ` ${escapeXml(options.className)}` : ''}" data-machine="${escapeXml(graph.id)}" ` +
    `viewBox="0 0 ${vw} ${vh}" width="${vw}" height="${vh}" role="img" aria-label="${escapeXml(graph.id)} state machine">` +
    defs +
    parts.join('') +
    `</svg>`
  );
}
