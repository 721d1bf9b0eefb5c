#!/usr/bin/env node
/**
 * interprocess-converse: talk to a daemon from the shell, the way busctl, varlinkctl and grpcurl
 * do for D-Bus, varlink and gRPC.
 *
 *   interprocess-converse call <socket> '<event as JSON>'
 *   interprocess-converse info <socket>
 *   interprocess-converse monitor <socket>
 *   interprocess-converse dashboard <socket>
 *
 * Run with --help for everything.
 */
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { connect } from './client.js';
import type { Connection } from './connection/connection.js';
import { messageLine, replayText, workText } from './cli-observe.js';
import { watchMessages } from './message-watch.js';
import { introspect, libraryVersion, type ConnectionInfo, type IntrospectionEvent, type ServerInfo } from './introspection.js';
import { runConformance } from './conformance/cli.js';
import { guardWarnings, terminalSafe, terminalSafeDeep, terminalSafeOutput } from './terminal-safe.js';

const NAME = 'interprocess-converse';

/** Exit codes (also in the help text). */
export const ExitCode = {
  OK: 0,
  /** The request failed: the daemon answered with an error, or the connection was lost. */
  FAILED: 1,
  USAGE: 2,
  /** Could not connect or was refused (no server, handshake, access, server full). */
  CONNECT: 3,
  TIMEOUT: 4,
} as const;

const HELP = `${NAME}: call, inspect and watch a daemon that uses interprocess-converse.

Usage:
  ${NAME} call <socket> '<event as JSON>'     ask, print the reply as JSON
  ${NAME} call <socket> <type> ['<fields>']   the same, type and fields apart
  ${NAME} tell <socket> '<event as JSON>'     send one-way, no reply
  ${NAME} info <socket>                       server version, message types, connections
  ${NAME} connections <socket>                the connections and their states (alias: ls)
  ${NAME} monitor <socket>                    stream connection state changes until Ctrl-C
                                              (--messages: every message too)
  ${NAME} dashboard <socket>                  serve the live web dashboard for the daemon
  ${NAME} conformance server <socket>         test another implementation's server (--help)
  ${NAME} conformance client -- <command…>    test another implementation's client (--help)
  ${NAME} replay <file>                       print a saved flight recording
  ${NAME} help [command]

<socket> is a local socket name, or tcp://host:port, tls://host:port or
nats://host:port/<service> (see docs/BEYOND-ONE-MACHINE.md).

Options:
  --json            machine-readable output: one JSON document (call, info, connections),
                    one JSON object a line (monitor); errors as {"error": …} on stderr
  --timeout <ms>    connect and reply timeout, default 5000
  --wait            wait up to --timeout for a daemon that is not listening yet
  --port <n>        dashboard: TCP port, default 0 (any free port; the URL is printed)
  --host <addr>     dashboard: address to bind, default 127.0.0.1 (loopback only)
  --tls-cert <file>, --tls-key <file>, --tls-ca <file>
                    for tls:// names: this client's certificate and key, and the CA that
                    signed the daemon's (PEM files)
  --allow-insecure-network
                    allow plain tcp:// to a non-loopback address
  -h, --help        this text
  -V, --version     the version of ${NAME}

info, connections, monitor and dashboard need a daemon that listens with
\`introspection: true\`; call and tell work with any daemon.

Exit status: 0 ok · 1 the daemon answered with an error, does not handle the message, or
went away (monitor) · 2 bad usage · 3 could not connect (or was refused) · 4 --timeout passed.
Errors print their code on stderr: "error TIMEOUT: …".

Examples:
  ${NAME} call /run/user/1000/app.sock '{"type":"add","a":1,"b":2}'
  ${NAME} call /run/user/1000/app.sock add '{"a":1,"b":2}' --json
  ${NAME} monitor /run/user/1000/app.sock --json | jq .
  ${NAME} dashboard /run/user/1000/app.sock --port 8080
`;

const COMMAND_HELP: Record<string, string> = {
  call: `${NAME} call <socket> '<event as JSON>' [--timeout ms] [--json]
${NAME} call <socket> <type> ['<fields as JSON>'] [--timeout ms] [--json]

Asks the daemon and prints the reply as JSON (pretty-printed; one line with --json).
BigInts print as strings, Map as an object (or [key, value] pairs), Set as an array, bytes as
{"$base64": "…"}, Date as an ISO string, no reply (undefined) as null.
`,
  tell: `${NAME} tell <socket> '<event as JSON>' [--timeout ms]

Sends the event one-way (no reply is expected) and exits once it is written. When the daemon
answers introspection, a message type it does not handle is an error (exit 1) and nothing is
sent; otherwise the type cannot be checked, and a note says so.
`,
  info: `${NAME} info <socket> [--json] [--timeout ms]

What the daemon's introspection reports: package and wire protocol version, socket, pid,
uptime, the supervisor's state and counts, message types, and every connection.
`,
  connections: `${NAME} connections <socket> [--json] [--timeout ms]   (alias: ls)

Every connection not yet closed: id, state, peer pid/uid, age, pending asks, messages and
bytes each way, last error.
`,
  monitor: `${NAME} monitor <socket> [--messages] [--json] [--timeout ms]

Streams connection state changes (handshake → active → closing → closed), supervisor state
changes and refused connections, one line each, until Ctrl-C (exit 0). With --json each line
is the event as JSON. A summary goes to stderr first. Exits 1 when the daemon goes away.

--messages also shows every message of every other connection as it passes: time, connection,
direction (← the daemon received it, → it sent it), kind, #id, type, size and, for answers, the
time since the ask; field values only when the daemon traces at 'verbose' (after its redact
hook). With --json: {"kind":"message","record":{…}}.
`,
  replay: `${NAME} replay <file> [--json]

Prints a flight recording saved with saveRecording (a connection's last frames and lifecycle
transitions, e.g. error.recording from a server's connectionError event) in time order:
← a frame the recording side received, → one it sent. With --json, the checked recording.
`,
  dashboard: `${NAME} dashboard <socket> [--port n] [--host addr] [--timeout ms]

Serves the live dashboard for the daemon, its data read over introspection, and prints its URL.
Binds to 127.0.0.1 unless --host says otherwise. Ctrl-C to stop.
`,
};

interface Flags {
  json: boolean;
  timeout: number;
  wait: boolean;
  /** monitor: every message of every connection too. */
  messages: boolean;
  port: number;
  host: string;
  /** For tls:// names: PEM contents read from --tls-cert, --tls-key and --tls-ca. */
  tls: { cert?: string; key?: string; ca?: string } | undefined;
  allowInsecureNetwork: boolean;
}

/** The PEM files named by the --tls-* flags, read once. */
function tlsFromFiles(cert: string | undefined, key: string | undefined, ca: string | undefined): Flags['tls'] {
  if (cert === undefined && key === undefined && ca === undefined) return undefined;
  const read = (flag: string, file: string | undefined): string | undefined => {
    if (file === undefined) return undefined;
    try {
      return fs.readFileSync(file, 'utf8');
    } catch (error) {
      throw new UsageError(`--${flag}: cannot read ${file}: ${(error as Error).message}`);
    }
  };
  return { cert: read('tls-cert', cert), key: read('tls-key', key), ca: read('tls-ca', ca) };
}

class UsageError extends Error {}

// ── Output helpers ─────────────────────────────────────────────────────────────────────────

/** Everything the CLI prints goes through here: control characters never reach the terminal raw. */
function write(stream: NodeJS.WriteStream, text: string): Promise<void> {
  return new Promise((resolve) => {
    if (!stream.write(terminalSafeOutput(text))) stream.once('drain', resolve);
    else resolve();
  });
}

/** A value as plain JSON data (what msgpackr can carry that JSON cannot, made explicit). */
export function toPlain(value: unknown, depth = 0): unknown {
  if (depth > 200) return '[too deep]';
  if (value === undefined) return null;
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (value instanceof Uint8Array) return { $base64: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') };
  if (value instanceof Set) return [...value].map((v) => toPlain(v, depth + 1));
  if (value instanceof Map) {
    const entries = [...value.entries()];
    if (entries.every(([k]) => typeof k === 'string')) {
      return Object.fromEntries(entries.map(([k, v]) => [k, toPlain(v, depth + 1)]));
    }
    return entries.map(([k, v]) => [toPlain(k, depth + 1), toPlain(v, depth + 1)]);
  }
  if (Array.isArray(value)) return value.map((v) => toPlain(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = toPlain(v, depth + 1);
  return out;
}

function json(value: unknown, compact: boolean): string {
  return `${JSON.stringify(toPlain(value), null, compact ? undefined : 2)}\n`;
}

/**
 * Whether a failure to connect was --timeout running out (exit 4), rather than a refusal or no
 * daemon at all (exit 3): connecting gave up at its deadline, with no errno that says why.
 */
function connectTimedOut(error: unknown, elapsed: number, flags: Pick<Flags, 'timeout' | 'wait'>): boolean {
  const e = error as { code?: unknown; cause?: { code?: unknown } };
  if (elapsed < flags.timeout) return false;
  if (e?.code === 'HANDSHAKE_FAILED') return true;
  if (e?.code !== 'CONNECT_FAILED') return false;
  const errno = e.cause?.code;
  // Busy to the end (or no errno at all): the deadline. Nobody listening: only when waiting for it.
  if (errno === undefined || errno === 'EAGAIN') return true;
  return flags.wait && (errno === 'ENOENT' || errno === 'ECONNREFUSED');
}

/** The library's advice names its options; the CLI's names its flags. */
const OPTION_TO_FLAG: Array<[RegExp, string]> = [
  [/pass waitForServer: true \(or reconnect\)/g, 'pass --wait'],
  [/\(ask option `timeout` or `replyTimeout`\)/g, '(--timeout)'],
  [/\b(connectTimeout|replyTimeout|handshakeTimeout)\b/g, '--timeout'],
];
export function inFlagTerms(message: string): string {
  for (const [pattern, flag] of OPTION_TO_FLAG) message = message.replace(pattern, flag);
  return message;
}

function exitCodeOf(error: unknown): number {
  const code = (error as { code?: unknown })?.code;
  switch (code) {
    case 'TIMEOUT':
      return ExitCode.TIMEOUT;
    case 'CONNECT_FAILED':
    case 'HANDSHAKE_FAILED':
    case 'VERSION_MISMATCH':
    case 'SERVER_FULL':
    case 'ACCESS_DENIED':
    case 'INVALID_NAME':
      return ExitCode.CONNECT;
    default:
      return ExitCode.FAILED;
  }
}

async function reportError(error: unknown, flags: Pick<Flags, 'json'>, hint?: string): Promise<number> {
  if (error instanceof UsageError) {
    await write(process.stderr, flags.json ? json({ error: { code: 'USAGE', message: error.message } }, true) : `${NAME}: ${error.message}\nRun \`${NAME} --help\` for usage.\n`);
    return ExitCode.USAGE;
  }
  const e = error as { code?: string; message?: string; remote?: { name: string; message: string; code?: string }; issues?: unknown };
  const code = typeof e?.code === 'string' ? e.code : 'ERROR';
  const message = inFlagTerms(typeof e?.message === 'string' ? e.message : String(error));
  if (flags.json) {
    const payload: Record<string, unknown> = { code, message };
    if (e?.remote !== undefined) payload.remote = e.remote;
    if (e?.issues !== undefined) payload.issues = e.issues;
    if (hint !== undefined) payload.hint = hint;
    await write(process.stderr, json({ error: payload }, true));
  } else {
    // Messages quote the daemon (remote errors, REJECT reasons, protocol names): one line, escaped.
    const remoteCode = e?.remote?.code !== undefined ? ` (remote code ${terminalSafe(e.remote.code)})` : '';
    await write(process.stderr, `error ${terminalSafe(code)}${remoteCode}: ${terminalSafe(message)}${hint !== undefined ? `\n${hint}` : ''}\n`);
  }
  return exitCodeOf(error);
}

function introspectionHint(error: unknown, socket: string): string | undefined {
  const code = (error as { code?: string })?.code;
  if (code === 'NO_HANDLER') {
    return `The daemon at ${socket} does not answer introspection: start it with listen(name, { introspection: true }).`;
  }
  if (code === 'TIMEOUT') {
    return `If the daemon reads messages by iterating (no handlers), it needs listen(name, { introspection: true }) to answer introspection.`;
  }
  return undefined;
}

// ── Formatting ─────────────────────────────────────────────────────────────────────────────

function duration(ms: number | undefined): string {
  if (ms === undefined) return '?';
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function clock(at: number): string {
  const d = new Date(at);
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

function peer(info: { peer: { pid?: number; uid?: number; subject?: Record<string, string>; address?: string } }): string {
  const parts: string[] = [];
  if (info.peer.pid !== undefined) parts.push(`pid ${info.peer.pid}`);
  if (info.peer.uid !== undefined) parts.push(`uid ${info.peer.uid}`);
  if (info.peer.subject?.CN !== undefined) parts.push(`CN=${info.peer.subject.CN}`);
  else if (info.peer.address !== undefined) parts.push(info.peer.address);
  return parts.join(' ') || 'peer unknown';
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}

function connectionTable(connections: ConnectionInfo[], you: string | undefined): string {
  if (connections.length === 0) return 'no connections\n';
  const rows = [['ID', 'STATE', 'PID', 'UID', 'AGE', 'PENDING', 'MSGS IN/OUT', 'BYTES IN/OUT', 'LAST ERROR']];
  for (const c of connections) {
    rows.push([
      c.id + (c.id === you ? ' (you)' : ''),
      c.state,
      c.peer.pid === undefined ? '-' : String(c.peer.pid),
      c.peer.uid === undefined ? '-' : String(c.peer.uid),
      duration(c.age),
      String(c.pendingAsks),
      `${c.stats.messagesIn}/${c.stats.messagesOut}`,
      `${bytes(c.stats.bytesIn)}/${bytes(c.stats.bytesOut)}`,
      c.lastError === undefined ? '' : `${c.lastError.code}: ${c.lastError.message}`.slice(0, 80),
    ]);
  }
  return table(rows);
}

function infoText(server: ServerInfo, connections: ConnectionInfo[]): string {
  const lines = [
    `${server.library} ${server.version} · wire protocol ${server.protocolVersion} · introspection ${server.introspectionVersion}`,
    '',
    table([
      ['socket', server.socket],
      ['pid', String(server.pid)],
      ['uptime', duration(server.uptime)],
      ['state', server.state],
      ['connections', `${server.live} live · ${server.accepted} accepted · ${server.refused} refused · max ${server.maxConnections}`],
      ['messages', server.messageTypes === undefined ? '(not declared)' : server.messageTypes.join(', ') || '(none)'],
      ...(server.protocol !== undefined ? [['protocol', `${server.protocol.name ?? ''}${server.protocol.version !== undefined ? ` v${server.protocol.version}` : ''}`]] : []),
    ]).trimEnd(),
    '',
    connectionTable(connections, server.you).trimEnd(),
  ];
  return `${lines.join('\n')}\n`;
}

function eventLine(event: IntrospectionEvent, you: string | undefined): string {
  const time = clock(event.at);
  if (event.kind === 'connection') {
    const who = event.id === you ? `${event.id} (this monitor)` : event.id;
    const error = event.error !== undefined ? `  ${event.error.code}: ${event.error.message}` : '';
    return `${time}  connection ${who}  ${event.from ?? 'new'} → ${event.to}  ${peer(event.connection)}${error}\n`;
  }
  if (event.kind === 'server') return `${time}  server  ${event.from} → ${event.to}\n`;
  return `${time}  refused  ${event.code}: ${event.message}\n`;
}

// ── Commands ───────────────────────────────────────────────────────────────────────────────

function parseEvent(args: string[]): { type: string } & Record<string, unknown> {
  const [first, second, ...rest] = args;
  if (first === undefined) throw new UsageError('missing the event: give it as JSON, e.g. \'{"type":"status"}\', or as a type and optional fields.');
  if (rest.length > 0) throw new UsageError(`unexpected arguments: ${rest.join(' ')}`);
  let event: unknown;
  const trimmed = first.trim();
  if (trimmed.startsWith('{')) {
    if (second !== undefined) throw new UsageError(`unexpected argument after the event JSON: ${second}`);
    try {
      event = JSON.parse(trimmed);
    } catch (error) {
      throw new UsageError(`the event is not valid JSON: ${(error as Error).message}`);
    }
  } else {
    let fields: unknown = {};
    if (second !== undefined) {
      try {
        fields = JSON.parse(second);
      } catch (error) {
        throw new UsageError(`the fields are not valid JSON: ${(error as Error).message}`);
      }
      if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) throw new UsageError('the fields must be a JSON object.');
    }
    event = { ...(fields as object), type: trimmed };
  }
  if (typeof event !== 'object' || event === null || Array.isArray(event) || typeof (event as { type?: unknown }).type !== 'string') {
    throw new UsageError('the event must be a JSON object with a string "type", e.g. \'{"type":"add","a":1,"b":2}\'.');
  }
  return event as { type: string } & Record<string, unknown>;
}

async function open(socket: string, flags: Flags): Promise<Connection> {
  // No handlers of our own: an ask from the daemon gets NO_HANDLER at once, tells are dropped.
  // Its own lack of handlers is deliberate: nothing to warn about (warnUnobservedErrors: false).
  return connect(socket, {
    handlers: {},
    warnUnobservedErrors: false,
    connectTimeout: flags.timeout,
    handshakeTimeout: flags.timeout,
    replyTimeout: flags.timeout,
    waitForServer: flags.wait,
    tls: flags.tls,
    allowInsecureNetwork: flags.allowInsecureNetwork,
  });
}

/** Connect, or report why not: exit 4 when --timeout ran out, else 3 (or 2 for a bad name). */
async function openOrReport(socket: string, flags: Flags): Promise<Connection | number> {
  const started = performance.now();
  try {
    return await open(socket, flags);
  } catch (error) {
    if (connectTimedOut(error, performance.now() - started, flags)) {
      await reportError(error, flags, `Gave up after --timeout ${flags.timeout} ms.`);
      return ExitCode.TIMEOUT;
    }
    return reportError(error, flags);
  }
}

async function withConnection(socket: string, flags: Flags, run: (connection: Connection) => Promise<number>, hint?: (error: unknown) => string | undefined): Promise<number> {
  const opened = await openOrReport(socket, flags);
  if (typeof opened === 'number') return opened;
  const connection = opened;
  try {
    return await run(connection);
  } catch (error) {
    return reportError(error, flags, hint?.(error));
  } finally {
    await connection.close({ timeout: 1000 }).catch(() => undefined);
  }
}

async function call(socket: string, args: string[], flags: Flags): Promise<number> {
  const event = parseEvent(args);
  return withConnection(socket, flags, async (connection) => {
    const reply = await connection.ask(event as never, { timeout: flags.timeout });
    await write(process.stdout, json(reply, flags.json));
    return ExitCode.OK;
  });
}

async function tell(socket: string, args: string[], flags: Flags): Promise<number> {
  const event = parseEvent(args);
  return withConnection(socket, flags, async (connection) => {
    // A tell is never answered, so a type the daemon does not handle would vanish without a word.
    // Ask introspection first, when the daemon answers it; else say the type went unchecked.
    const types = await messageTypesOf(connection, flags);
    if (types !== undefined && !types.includes(event.type)) {
      const error = Object.assign(new Error(`The daemon does not handle "${event.type}" (its message types: ${types.join(', ') || 'none'}). Nothing was sent.`), { code: 'NO_HANDLER' });
      return reportError(error, flags);
    }
    await connection.tell(event as never);
    if (types === undefined && !flags.json) {
      await write(process.stderr, `note: sent; the daemon does not answer introspection, so whether it handles "${event.type}" could not be checked.\n`);
    }
    return ExitCode.OK;
  });
}

/** The daemon's message types by introspection, or undefined when it does not say. */
async function messageTypesOf(connection: Connection, flags: Flags): Promise<readonly string[] | undefined> {
  try {
    const info = await introspect(connection).info({ timeout: Math.min(flags.timeout, 2000) });
    return info.messageTypes;
  } catch {
    return undefined; // no introspection (NO_HANDLER), not allowed, or a daemon that iterates and ignores it
  }
}

async function info(socket: string, flags: Flags, connectionsOnly: boolean): Promise<number> {
  return withConnection(
    socket,
    flags,
    async (connection) => {
      const client = introspect(connection);
      const [server, connections] = await Promise.all([client.info({ timeout: flags.timeout }), client.connections({ timeout: flags.timeout })]);
      if (flags.json) await write(process.stdout, json(connectionsOnly ? connections : { server, connections }, true));
      else {
        const [safeServer, safeConnections] = terminalSafeDeep([server, connections] as const);
        await write(process.stdout, (connectionsOnly ? connectionTable(safeConnections, safeServer.you) : infoText(safeServer, safeConnections)) + workText(safeConnections));
      }
      return ExitCode.OK;
    },
    (error) => introspectionHint(error, socket),
  );
}

function untilSignal(): { promise: Promise<NodeJS.Signals>; dispose(): void } {
  let resolve!: (signal: NodeJS.Signals) => void;
  const promise = new Promise<NodeJS.Signals>((r) => (resolve = r));
  const onInt = (): void => resolve('SIGINT');
  const onTerm = (): void => resolve('SIGTERM');
  process.once('SIGINT', onInt);
  process.once('SIGTERM', onTerm);
  return {
    promise,
    dispose() {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
    },
  };
}

async function monitor(socket: string, flags: Flags): Promise<number> {
  const signal = untilSignal();
  try {
    return await withConnection(
      socket,
      flags,
      async (connection) => {
        let you: string | undefined;
        let queue = Promise.resolve();
        const watch = await introspect(connection).watch(
          (event, dropped) => {
            const text = (dropped > 0 ? (flags.json ? json({ kind: 'dropped', count: dropped }, true) : `… ${dropped} event(s) dropped (this monitor fell behind)\n`) : '') + (flags.json ? json(event, true) : eventLine(terminalSafeDeep(event), you));
            queue = queue.then(() => write(process.stdout, text));
          },
          { timeout: flags.timeout },
        );
        you = watch.initial.server.you === undefined ? undefined : terminalSafe(watch.initial.server.you);
        const messages = flags.messages
          ? await watchMessages(connection, (record, dropped) => {
              const text = messageLine(record, dropped, flags.json);
              queue = queue.then(() => write(process.stdout, text));
            }, { timeout: flags.timeout })
          : undefined;
        const { server, connections } = terminalSafeDeep(watch.initial);
        await write(
          process.stderr,
          `monitoring ${server.socket} (${server.library} ${server.version}, pid ${server.pid}): ${connections.length} connection(s), this monitor is ${you ?? '?'}. Ctrl-C to stop.\n`,
        );
        const outcome = await Promise.race([signal.promise.then(() => 'signal' as const), connection.closed.then(() => 'closed' as const)]);
        await queue;
        if (outcome === 'signal') {
          await messages?.stop();
          await watch.stop();
          return ExitCode.OK;
        }
        // Watching ends only by Ctrl-C; the daemon going away is a failure, even when it said goodbye.
        const reason = connection.closeReason;
        if (reason === undefined) {
          return reportError(Object.assign(new Error('The daemon closed the connection (it shut down or restarted).'), { code: 'CONNECTION_CLOSED' }), flags);
        }
        return reportError(reason, flags);
      },
      (error) => introspectionHint(error, socket),
    );
  } finally {
    signal.dispose();
  }
}

async function dashboard(socket: string, flags: Flags): Promise<number> {
  const signal = untilSignal();
  const opened = await openOrReport(socket, flags);
  if (typeof opened === 'number') {
    signal.dispose();
    return opened;
  }
  const connection = opened;
  try {
    const { serveDashboard } = await import('./dashboard/server.js');
    const served = await serveDashboard(connection, { port: flags.port, host: flags.host, timeout: flags.timeout, title: `${NAME} · ${socket}` });
    await write(process.stdout, flags.json ? json({ url: served.url }, true) : `dashboard for ${socket}: ${served.url}\n`);
    let stopping = false;
    void served.ended.then((error) =>
      stopping ? undefined : write(process.stderr, `the daemon went away (${error.code}); the page keeps its last state. Ctrl-C to stop.\n`),
    );
    await signal.promise;
    stopping = true;
    await served.close();
    return ExitCode.OK;
  } catch (error) {
    return reportError(error, flags, introspectionHint(error, socket));
  } finally {
    signal.dispose();
    await connection.close({ timeout: 1000 }).catch(() => undefined);
  }
}

// ── Entry ──────────────────────────────────────────────────────────────────────────────────

function parse(argv: string[]): { command: string | undefined; positionals: string[]; flags: Flags; help: boolean; version: boolean } {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        json: { type: 'boolean' },
        timeout: { type: 'string' },
        wait: { type: 'boolean' },
        messages: { type: 'boolean' },
        port: { type: 'string' },
        host: { type: 'string' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        'tls-ca': { type: 'string' },
        'allow-insecure-network': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'V' },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  const number = (name: string, text: string | undefined, fallback: number, min: number, max: number): number => {
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!Number.isInteger(value) || value < min || value > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max} (got ${text}).`);
    return value;
  };
  const flags: Flags = {
    json: values.json === true,
    timeout: number('timeout', values.timeout, 5000, 1, 2 ** 31 - 1),
    wait: values.wait === true,
    messages: values.messages === true,
    port: number('port', values.port, 0, 0, 65535),
    host: values.host ?? '127.0.0.1',
    tls: tlsFromFiles(values['tls-cert'], values['tls-key'], values['tls-ca']),
    allowInsecureNetwork: values['allow-insecure-network'] === true,
  };
  return { command: positionals[0], positionals: positionals.slice(1), flags, help: values.help === true, version: values.version === true };
}

export async function main(argv: string[]): Promise<number> {
  // The conformance kit has its own arguments (a client command is passed through untouched).
  if (argv[0] === 'conformance') {
    return runConformance(argv.slice(1), (text) => process.stdout.write(terminalSafeOutput(text)), (text) => process.stderr.write(terminalSafeOutput(text)));
  }
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    return reportError(error, { json: argv.includes('--json') });
  }
  const { command, positionals, flags } = parsed;
  try {
    if (parsed.version) {
      await write(process.stdout, `${libraryVersion()}\n`);
      return ExitCode.OK;
    }
    if (command === undefined || command === 'help' || parsed.help) {
      const topic = command === 'help' ? positionals[0] : command;
      const text = topic !== undefined ? COMMAND_HELP[topic === 'ls' ? 'connections' : topic] : undefined;
      await write(process.stdout, text ?? HELP);
      if (topic !== undefined && text === undefined && command !== undefined && command !== 'help') throw new UsageError(`unknown command "${topic}".`);
      return ExitCode.OK;
    }
    const socket = positionals[0];
    const rest = positionals.slice(1);
    if (!Object.hasOwn(COMMAND_HELP, command) && command !== 'ls') throw new UsageError(`unknown command "${command}".`);
    if (socket === undefined) throw new UsageError(`${command}: missing the ${command === 'replay' ? 'file' : 'socket'} name.`);
    const noMore = (): void => {
      if (rest.length > 0) throw new UsageError(`${command}: unexpected arguments: ${rest.join(' ')}`);
    };
    switch (command) {
      case 'replay':
        noMore();
        await write(process.stdout, replayText(socket, flags.json));
        return ExitCode.OK;
      case 'call':
        return await call(socket, rest, flags);
      case 'tell':
        return await tell(socket, rest, flags);
      case 'info':
        noMore();
        return await info(socket, flags, false);
      case 'connections':
      case 'ls':
        noMore();
        return await info(socket, flags, true);
      case 'monitor':
        noMore();
        return await monitor(socket, flags);
      case 'dashboard':
        noMore();
        return await dashboard(socket, flags);
      default:
        throw new UsageError(`unknown command "${command}".`);
    }
  } catch (error) {
    return reportError(error, flags);
  }
}

// Run when executed (node dist/src/cli.js, or the package's bin through its symlink), not when imported.
function isMain(): boolean {
  const invoked = process.argv[1];
  if (invoked === undefined) return false;
  try {
    return fs.realpathSync(invoked) === fs.realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  guardWarnings();
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(terminalSafeOutput(`${NAME}: internal error: ${(error as Error)?.stack ?? String(error)}\n`));
      process.exit(1);
    },
  );
}
