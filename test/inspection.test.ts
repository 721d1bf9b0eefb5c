/**
 * The `inspect` option: XState's inspection events from every actor — the supervisor, each
 * connection child (direct or grouped) and a client's own connection actor — in the format
 * `@statelyai/inspect` consumes. The real package is used (its `createInspector` with a custom
 * adapter that keeps the events in memory instead of sending them to a browser), so the test
 * breaks if the shapes stop fitting.
 */
import { createInspector, type StatelyInspectionEvent } from '@statelyai/inspect';
import type { createBrowserInspector, createWebSocketInspector } from '@statelyai/inspect';
import type { InspectionEvent } from 'xstate';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, listen, type Connection, type InspectOption, type ListenOptions } from '../src/index.js';
import { cleanup, onCleanup, socketName, waitUntil } from './helpers/cleanup.js';

afterEach(cleanup);

type Api = { add(e: { a: number; b: number }): number; note(e: { text: string }): void };

// Compile-time: the real inspectors' observers are what `inspect` takes (npm test type-checks this file).
const _webSocket: InspectOption = null as unknown as ReturnType<typeof createWebSocketInspector>['inspect'];
const _browser: InspectOption = null as unknown as ReturnType<typeof createBrowserInspector>['inspect'];
void _webSocket;
void _browser;

/**
 * What @statelyai/inspect's WebSocket adapter does before sending: JSON with cycles cut and a
 * depth limit of 10 (it uses safe-stable-stringify configured so).
 */
function serializeLikeAdapter(value: unknown): string {
  const walk = (v: unknown, depth: number, stack: object[]): unknown => {
    if (v !== null && typeof v === 'object' && typeof (v as { toJSON?: unknown }).toJSON === 'function') v = (v as { toJSON(): unknown }).toJSON();
    if (typeof v === 'bigint') return v.toString();
    if (typeof v === 'function' || typeof v === 'symbol') return undefined;
    if (v === null || typeof v !== 'object') return v;
    if (stack.includes(v)) return '[Circular]';
    if (depth >= 10) return Array.isArray(v) ? '[Array]' : '[Object]';
    stack.push(v);
    const out = Array.isArray(v) ? v.map((x) => walk(x, depth + 1, stack) ?? null) : Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, depth + 1, stack)]));
    stack.pop();
    return out;
  };
  return JSON.stringify(walk(value, 0, []));
}

/** A real @statelyai/inspect inspector whose adapter records what it would send. */
function recordingInspector(): { inspector: ReturnType<typeof createInspector>; events: StatelyInspectionEvent[] } {
  const events: StatelyInspectionEvent[] = [];
  // Serialized as the package's adapters serialize: every event must survive the trip.
  const inspector = createInspector({ send: (event) => events.push(JSON.parse(serializeLikeAdapter(event)) as StatelyInspectionEvent) });
  return { inspector, events };
}

function valuesOf(events: StatelyInspectionEvent[], sessionId: string): string[] {
  const values: string[] = [];
  for (const event of events) {
    if (event.type !== '@xstate.snapshot' || event.sessionId !== sessionId) continue;
    const value = String((event.snapshot as { value?: unknown }).value);
    if (values[values.length - 1] !== value) values.push(value);
  }
  return values;
}

describe('inspect: XState inspection of every actor', () => {
  it("reaches the supervisor and each connection in @statelyai/inspect's format", async () => {
    const { inspector, events } = recordingInspector();
    const name = socketName();
    const options: ListenOptions<Api, {}> = {
      handlers: { add: ({ a, b }) => a + b, note: () => {} },
      inspect: inspector.inspect, // the real package's observer, as the README says
    };
    const server = await listen<Api, {}>(name, options);
    onCleanup(() => server.close({ timeout: 500 }));
    const serverIds: string[] = [];
    server.on('connection', (c) => serverIds.push(c.actor.id));

    const graceful = await connect<Api, {}>(name);
    const destroyed = await connect<Api, {}>(name);
    expect(await graceful.ask({ type: 'add', a: 1, b: 2 })).toBe(3);
    await graceful.close();
    destroyed.destroy();
    await waitUntil(() => server.connections.size === 0, 'both server-side connections closed');
    await server.close();
    // The inspector hands events to its adapter on a later tick.
    await waitUntil(() => events.some((e) => e.type === '@xstate.snapshot' && (e.snapshot as { value?: unknown }).value === 'closed' && e.sessionId === events[0]!.sessionId), 'the supervisor closed');

    for (const event of events) {
      expect(typeof event.sessionId).toBe('string');
      expect(typeof event._version).toBe('string');
      expect(typeof event.createdAt).toBe('string');
    }
    const actors = events.filter((e): e is Extract<StatelyInspectionEvent, { type: '@xstate.actor' }> => e.type === '@xstate.actor');
    const supervisor = actors.find((a) => a.name === 'supervisor' || JSON.parse(a.definition ?? '{}').id === 'supervisor')!;
    expect(supervisor).toBeDefined();
    expect(supervisor.parentId).toBeUndefined();
    expect(supervisor.rootId).toBe(supervisor.sessionId);
    // (No connection was left, so draining passed within one macrostep: snapshots show where it settled.)
    const supervisorValues = valuesOf(events, supervisor.sessionId);
    expect(supervisorValues[0]).toBe('listening');
    expect(supervisorValues.at(-1)).toBe('closed');

    // One connection actor per client, a child of the supervisor, named by its actor id,
    // carrying the machine's definition (what the Stately inspector draws).
    expect(serverIds).toHaveLength(2);
    for (const id of serverIds) {
      const actor = actors.find((a) => a.name === id)!;
      expect(actor, `actor event for connection ${id}`).toBeDefined();
      expect(actor.parentId).toBe(supervisor.sessionId);
      expect(actor.rootId).toBe(supervisor.sessionId);
      const definition = JSON.parse(actor.definition!) as { id: string; states: Record<string, unknown> };
      expect(definition.id).toBe('connection');
      expect(Object.keys(definition.states)).toEqual(expect.arrayContaining(['handshake', 'active', 'closing', 'closed']));
    }
    const gracefulId = serverIds[0]!;
    const destroyedId = serverIds[1]!;
    const sessionOf = (id: string): string => actors.find((a) => a.name === id)!.sessionId;
    expect(valuesOf(events, sessionOf(gracefulId))).toEqual(['handshake', 'active', 'closing', 'closed']);
    expect(valuesOf(events, sessionOf(destroyedId))).toEqual(['handshake', 'active', 'closed']);

    // Events sent to the actors: the accepted sockets and the transport's lifecycle reports.
    const sent = events.filter((e): e is Extract<StatelyInspectionEvent, { type: '@xstate.event' }> => e.type === '@xstate.event');
    expect(sent.filter((e) => e.sessionId === supervisor.sessionId && e.event.type === 'SOCKET.ACCEPTED')).toHaveLength(2);
    expect(sent.some((e) => e.sessionId === sessionOf(gracefulId) && e.event.type === 'TRANSPORT.HANDSHAKE_SUCCEEDED')).toBe(true);
    expect(sent.some((e) => e.sessionId === sessionOf(destroyedId) && e.event.type === 'TRANSPORT.CLOSED')).toBe(true);
  });

  it("reaches a client's own connection actor", async () => {
    const { inspector, events } = recordingInspector();
    const name = socketName();
    const server = await listen<Api, {}>(name, { handlers: { add: ({ a, b }) => a + b, note: () => {} } });
    onCleanup(() => server.close({ timeout: 500 }));
    const connection = await connect<Api, {}>(name, { inspect: inspector.inspect });
    await connection.ask({ type: 'add', a: 2, b: 2 });
    await connection.close();
    await waitUntil(() => valuesOf(events, events[0]?.sessionId ?? '').includes('closed'), 'the client actor closed');

    const root = events.find((e) => e.type === '@xstate.actor')! as Extract<StatelyInspectionEvent, { type: '@xstate.actor' }>;
    expect(JSON.parse(root.definition!).id).toBe('connection');
    expect(root.parentId).toBeUndefined();
    expect(valuesOf(events, root.sessionId)).toEqual(['handshake', 'active', 'closing', 'closed']);
  });

  it('messages never pass through the interpreter: asks and tells add no inspection events', async () => {
    const raw: InspectionEvent[] = [];
    const name = socketName();
    const server = await listen<Api, Api>(name, {
      handlers: { add: ({ a, b }) => a + b, note: () => {} },
      inspect: (event) => raw.push(event),
    });
    onCleanup(() => server.close({ timeout: 500 }));
    const clientEvents: InspectionEvent[] = [];
    const connection = await connect<Api, Api>(name, {
      handlers: { add: ({ a, b }) => a + b, note: () => {} },
      inspect: (event) => clientEvents.push(event),
    });
    await waitUntil(() => server.connections.size === 1, 'the server registered the connection');
    const serverSide = [...server.connections.values()][0] as Connection<Api, Api>;
    await new Promise((resolve) => setTimeout(resolve, 20));
    const before = [raw.length, clientEvents.length];

    const asks: Promise<number>[] = [];
    for (let i = 0; i < 500; i++) {
      asks.push(connection.ask({ type: 'add', a: i, b: 1 }));
      asks.push(serverSide.ask({ type: 'add', a: i, b: 2 }));
      void connection.tell({ type: 'note', text: 'x' });
      void serverSide.tell({ type: 'note', text: 'y' });
    }
    await Promise.all(asks);
    expect(connection.stats.messagesOut).toBeGreaterThanOrEqual(1000);
    expect([raw.length, clientEvents.length]).toEqual(before);
    await connection.close();
  });

  it('sees connections grouped under intermediate supervisors (past 100)', async () => {
    const seen = new Map<string, string | undefined>(); // connection actor id → parent actor id
    const name = socketName();
    const server = await listen<Api, {}>(name, {
      handlers: { add: ({ a, b }) => a + b, note: () => {} },
      inspect: (event) => {
        if (event.type === '@xstate.actor' && (event.actorRef as { logic?: { id?: string } }).logic?.id === 'connection') {
          seen.set((event.actorRef as unknown as { id: string }).id, (event.actorRef as { _parent?: { id: string } })._parent?.id);
        }
      },
    });
    onCleanup(() => server.close({ timeout: 2000 }));
    const connections = await Promise.all(Array.from({ length: 105 }, () => connect<Api, {}>(name)));
    onCleanup(() => Promise.all(connections.map((c) => c.close({ timeout: 500 }))));
    await waitUntil(() => server.connections.size === 105, 'all 105 connections registered');
    expect(seen.size).toBe(105);
    for (const connection of server.connections.values()) expect(seen.has(connection.actor.id)).toBe(true);
    const parents = new Set(seen.values());
    expect(parents.size).toBeGreaterThan(1); // the supervisor itself and at least one group
    expect([...parents].some((p) => p?.startsWith('group-'))).toBe(true);
  });
});
