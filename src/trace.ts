/** Placeholder replaced below. */
export interface MessageTracer {
  frame(dir: 'in' | 'out', kind: number, id: number, size: number, body: unknown): void;
  state(state: string): void;
}
