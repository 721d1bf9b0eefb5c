/**
 * A chunked upload as a protocol state machine: open → chunk* → commit | abort, with guards on
 * sizes, then a streamed download of what was stored.
 *
 *   npm run build && node dist/examples/upload.js
 *
 * The session machine decides what may come next: a chunk before `open`, a chunk bigger than
 * MAX_CHUNK or past the announced size, a `commit` before every byte has arrived — each is
 * refused with NOT_ACCEPTED, naming the state and the message, and never reaches a handler.
 * The declared protocol (zod) checks fields and replies; `download` is a streamed reply
 * (an async generator on the server, `for await … of connection.stream(…)` on the client).
 *
 * Server and client share one process only to keep the example short; over a socket it is the same.
 */
import { createHash } from 'node:crypto';
import { assign, setup } from 'xstate';
import { z } from 'zod';
import { answer, connect, ConverseError, defineProtocol, generateSocketName, listen } from '../src/index.js';

const MAX_FILE = 1024 * 1024;
const MAX_CHUNK = 64 * 1024;

/** Bytes (msgpack `bin`; Node decodes it to a Buffer, which is a Uint8Array). */
const bytes = z.custom<Uint8Array>((value) => value instanceof Uint8Array, { message: 'expected bytes' });

const Uploads = defineProtocol(
  {
    open: { input: z.object({ name: z.string().min(1), size: z.number().int().min(0).max(MAX_FILE) }), output: z.string() },
    chunk: { input: z.object({ data: bytes }), output: z.number() },
    commit: { output: z.object({ name: z.string(), size: z.number(), sha256: z.string() }) },
    abort: { output: z.string() },
    download: { input: z.object({ name: z.string() }), output: bytes, stream: true },
    quit: {},
  },
  { name: 'uploads', version: 1 },
);

type UploadEvent =
  | { type: 'open'; name: string; size: number }
  | { type: 'chunk'; data: Uint8Array }
  | { type: 'commit' }
  | { type: 'abort' }
  | { type: 'download'; name: string }
  | { type: 'quit' };

interface UploadContext {
  name: string;
  size: number;
  received: number;
  chunks: Uint8Array[];
  /** The file the last commit completed (the commit handler stores it). */
  committed: { name: string; data: Buffer } | undefined;
}

const empty = { name: '', size: 0, received: 0, chunks: [] as Uint8Array[] };

const uploadSession = setup({
  types: { context: {} as UploadContext, events: {} as UploadEvent },
  guards: {
    /** A chunk is at most MAX_CHUNK bytes and does not go past the size announced by `open`. */
    chunkFits: ({ context, event }) => event.type === 'chunk' && event.data.length <= MAX_CHUNK && context.received + event.data.length <= context.size,
    /** Every announced byte has arrived. */
    complete: ({ context }) => context.received === context.size,
  },
}).createMachine({
  id: 'upload',
  context: { ...empty, committed: undefined },
  initial: 'idle',
  states: {
    idle: {
      on: {
        open: {
          target: 'receiving',
          actions: assign(({ event }) => (event.type === 'open' ? { ...empty, chunks: [], name: event.name, size: event.size } : {})),
        },
        // Allowed between uploads; a self-transition counts as "accepted".
        download: { target: 'idle' },
        quit: { target: 'done' },
      },
    },
    receiving: {
      on: {
        chunk: {
          guard: 'chunkFits',
          actions: [
            assign(({ context, event }) =>
              event.type === 'chunk' ? { chunks: [...context.chunks, event.data], received: context.received + event.data.length } : {},
            ),
            // The machine answers each chunk itself: how many bytes it has so far.
            ({ context, event }) => answer(event, context.received),
          ],
        },
        commit: {
          guard: 'complete',
          target: 'idle',
          actions: assign(({ context }) => ({ ...empty, committed: { name: context.name, data: Buffer.concat(context.chunks) } })),
        },
        abort: {
          target: 'idle',
          actions: [assign({ ...empty }), ({ event }) => answer(event, 'aborted: nothing was stored')],
        },
      },
    },
    done: { type: 'final' },
  },
});

// ── The server ───────────────────────────────────────────────────────────────────────────
const store = new Map<string, Buffer>();
const name = generateSocketName();
const server = await listen(name, {
  protocol: Uploads,
  session: uploadSession,
  handlers: {
    open: ({ name: file, size }) => `ready for ${size} bytes of ${file}`,
    // Runs after the commit transition: the snapshot holds the completed file.
    commit: (_event, ctx) => {
      const { name: file, data } = (ctx.session!.context as UploadContext).committed!;
      store.set(file, data);
      return { name: file, size: data.length, sha256: createHash('sha256').update(data).digest('hex') };
    },
    // A streamed reply: one item per slice, no more than the client's window ahead of it.
    download: async function* ({ name: file }) {
      const data = store.get(file);
      if (data === undefined) throw Object.assign(new Error(`no file called ${file}`), { code: 'ENOENT' });
      for (let offset = 0; offset < data.length; offset += MAX_CHUNK) yield data.subarray(offset, offset + MAX_CHUNK);
    },
    quit: () => {},
  },
});
server.on('connection', (connection) => {
  let state = connection.session?.getSnapshot().value;
  connection.session?.subscribe((snapshot) => {
    if (snapshot.value !== state) console.log(`  server: session "${String(state)}" → "${String((state = snapshot.value))}"`);
  });
});

// ── A client ─────────────────────────────────────────────────────────────────────────────
const client = await connect(name, { protocol: Uploads });

async function attempt(label: string, run: () => Promise<unknown>): Promise<void> {
  try {
    const value = await run();
    console.log(`client: ${label} → ${JSON.stringify(value)}`);
  } catch (error) {
    if (!(error instanceof ConverseError)) throw error;
    const issues = error.issues ? ` ${JSON.stringify(error.issues)}` : '';
    const remote = error.remote?.code ? ` (remote code ${error.remote.code})` : '';
    console.log(`client: ${label} → ${error.code}${remote}: ${error.message}${issues}`);
  }
}

const file = Buffer.alloc(200_000, 'interprocess-converse ');
const slices = Array.from({ length: Math.ceil(file.length / MAX_CHUNK) }, (_, i) => file.subarray(i * MAX_CHUNK, (i + 1) * MAX_CHUNK));

await attempt('chunk before open', () => client.ask({ type: 'chunk', data: slices[0]! }));
await attempt('open a file over MAX_FILE', () => client.ask({ type: 'open', name: 'huge.bin', size: 10 * MAX_FILE }));
await attempt(`open notes.txt (${file.length} bytes)`, () => client.ask({ type: 'open', name: 'notes.txt', size: file.length }));
await attempt('open again while receiving', () => client.ask({ type: 'open', name: 'other.txt', size: 1 }));
await attempt(`a chunk over MAX_CHUNK (${MAX_CHUNK + 1} bytes)`, () => client.ask({ type: 'chunk', data: Buffer.alloc(MAX_CHUNK + 1) }));
await attempt(`chunk 1/${slices.length}`, () => client.ask({ type: 'chunk', data: slices[0]! }));
await attempt('commit before the last byte', () => client.ask({ type: 'commit' }));
for (let i = 1; i < slices.length; i++) await attempt(`chunk ${i + 1}/${slices.length}`, () => client.ask({ type: 'chunk', data: slices[i]! }));
await attempt('one byte past the announced size', () => client.ask({ type: 'chunk', data: Buffer.from('!') }));
await attempt('commit', () => client.ask({ type: 'commit' }));

await attempt('open draft.txt', () => client.ask({ type: 'open', name: 'draft.txt', size: 10 }));
await attempt('chunk 1/2', () => client.ask({ type: 'chunk', data: Buffer.from('hello') }));
await attempt('abort', () => client.ask({ type: 'abort' }));
await attempt('commit after abort', () => client.ask({ type: 'commit' }));

// A streamed reply: at most two slices in flight ahead of this loop.
const parts: Uint8Array[] = [];
for await (const part of client.stream({ type: 'download', name: 'notes.txt' }, { window: 2 })) {
  parts.push(part);
  console.log(`client: download notes.txt → part ${parts.length} (${part.length} bytes)`);
}
const downloaded = Buffer.concat(parts);
console.log(`client: downloaded ${downloaded.length} bytes, identical to the upload: ${downloaded.equals(file)}`);
await attempt('download draft.txt (aborted, never stored)', async () => {
  for await (const part of client.stream({ type: 'download', name: 'draft.txt' })) void part;
});

// `quit` reaches the final state: the server closes the connection, gracefully.
await attempt('quit', () => client.ask({ type: 'quit' }));
await client.closed;
console.log(`client: connection ${client.state}${client.closeReason ? ` (${client.closeReason.code})` : ', cleanly'}`);

await server.close();
if (!downloaded.equals(file)) process.exit(1);
console.log('done');
