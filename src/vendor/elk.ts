import { createRequire } from 'node:module';

/**
 * The Eclipse Layout Kernel (elkjs, what Stately's editor used to lay out machines), loaded only
 * when a diagram is laid out. It is a dev dependency, not a runtime one: `npm run build` copies
 * its self-contained `elk.bundled.js`, unmodified, to dist/src/vendor/elk.bundled.cjs
 * with its licence (EPL-2.0, see elk.LICENSE.md there); the source tree reads it from node_modules.
 */

export interface ElkLabel {
  text?: string;
  width?: number;
  height?: number;
  x?: number;
  y?: number;
}

export interface ElkNode {
  id: string;
  x?: number;
  y?: number;
  width?: number;
  height?: number;
  layoutOptions?: Record<string, string>;
  children?: ElkNode[];
  edges?: ElkEdge[];
  labels?: ElkLabel[];
}

export interface ElkEdge {
  id: string;
  sources: string[];
  targets: string[];
  labels?: ElkLabel[];
  /** Set by the layout: the node whose coordinates the sections and labels are relative to. */
  container?: string;
  sections?: Array<{ startPoint: { x: number; y: number }; endPoint: { x: number; y: number }; bendPoints?: Array<{ x: number; y: number }> }>;
}

interface Elk {
  layout(graph: ElkNode): Promise<ElkNode>;
}

let elk: Elk | undefined;

/** The layout engine (one instance per process; it keeps no state between layouts). */
export function layoutEngine(): Elk {
  if (elk === undefined) {
    const require = createRequire(import.meta.url);
    let ELK: new () => Elk;
    try {
      ELK = require('./elk.bundled.cjs') as new () => Elk;
    } catch {
      ELK = require('elkjs/lib/elk.bundled.js') as new () => Elk;
    }
    elk = new ELK();
  }
  return elk;
}
