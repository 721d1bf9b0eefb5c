import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { connectionMachine } from '../../machines/connection.machine.js';
import { supervisorMachine } from '../../machines/supervisor.machine.js';
import { Connection } from '../connection/connection.js';
import { ConverseError } from '../errors.js';
import type { IntrospectionEvent } from '../introspection.js';
import { Server } from '../server.js';
import { DashboardToken } from './access.js';
import { machineGraph } from '../machine-graph.js';
import { machineSvg } from './layout.js';
import { dashboardPage } from './page.js';
import { LocalSource, RemoteSource, type DashboardSource, type DashboardState } from './source.js';

export interface DashboardOptions {
  /** TCP port; 0 picks a free one (read it from `url`). @default 0 */
  port?: number;
  /**
   * Address to bind. Loopback by default: the page shows peer pids and uids. Anything else must
   * be asked for explicitly, and gets a warning. @default '127.0.0.1'
   */
  host?: string;
  /**
   * The secret every request must carry (in `url`, then in a cookie). At least 22 characters of
   * `A-Za-z0-9_-`. @default 32 random bytes, base64url
   */
  token?: string;
  /** The page's title. @default 'interprocess-converse' */
  title?: string;
  /** How often the page's counters refresh, ms. @default 1000 */
  interval?: number;
  /** Cards shown at most (the rest are counted). @default 200 */
  maxCards?: number;
  /** Remote mode: timeout of each introspection ask, ms. @default 5000 */
  timeout?: number;
}

/** A running dashboard. */
export interface Dashboard {
  /** `http://host:port/?token=…`: open this; without the token every request gets 403. */
  readonly url: string;
  /** The secret in `url` (send it as `?token=`, `Authorization: Bearer`, or let the page set its cookie). */
  readonly token: string;
  readonly port: number;
  readonly host: string;
  /** The state the page shows (what `GET /api/snapshot` returns). */
  state(): Promise<DashboardState>;
  /** Stop serving: ends every event stream and closes the HTTP server (the observed server is left alone). */
  close(): Promise<void>;
  /**
   * Settles when the data source ends: a remote daemon went away (with its error). Never
   * settles for an in-process server.
   */
  readonly ended: Promise<ConverseError>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

interface Diagrams {
  connectionSvg: string;
  miniSvg: string;
  supervisorSvg: string;
}
let pageParts: Promise<Diagrams> | undefined;

/** The library's own machines, laid out once per process. */
function diagrams(): Promise<Diagrams> {
  pageParts ??= (async () => {
    const connection = machineGraph(connectionMachine);
    const [connectionSvg, miniSvg, supervisorSvg] = await Promise.all([
      machineSvg(connection, { idPrefix: 'conn', className: 'full' }),
      machineSvg(connection, { labels: false, idPrefix: 'mini', className: 'mini' }),
      machineSvg(machineGraph(supervisorMachine), { idPrefix: 'sup' }),
    ]);
    return { connectionSvg, miniSvg, supervisorSvg };
  })();
  return pageParts;
}

/**
 * Serve a live dashboard of `target` over HTTP: every connection as a card on a diagram of the
 * connection machine, the supervisor's counts and a timeline of transitions, pushed to the page
 * as they happen (server-sent events).
 *
 * `target` is an in-process `Server`, or a `Connection` (from `connect`) to a daemon that
 * listens with `introspection: true`, whose data then comes over the socket.
 *
 * Endpoints: `GET /` the page, `GET /api/snapshot` the state as JSON, `GET /api/events` the
 * event stream (`state` and `transition` messages). Read-only; requests whose Host header is not
 * this address (DNS rebinding) are refused, and so is every request without the dashboard's token
 * (`url` carries it; see ./access.ts): 403, no data.
 */
export async function serveDashboard(target: Server | Connection, options: DashboardOptions = {}): Promise<Dashboard> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 0;
  const interval = options.interval ?? 1000;
  const maxCards = options.maxCards ?? 200;
  const title = options.title ?? 'interprocess-converse';
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConverseError('INVALID_ARGUMENT', `port must be an integer from 0 to 65535 (got ${String(port)}).`);
  if (!(interval >= 50)) throw new ConverseError('INVALID_ARGUMENT', `interval must be at least 50 ms (got ${String(interval)}).`);
  if (!LOOPBACK.has(host)) {
    process.emitWarning(
      `interprocess-converse: the dashboard listens on ${host}, not loopback: anyone who can reach it and learns its token (it travels in plain HTTP) sees every connection's pid and uid.`,
      { code: 'INTERPROCESS_CONVERSE_DASHBOARD_NOT_LOOPBACK' },
    );
  }

  const token = new DashboardToken(options.token);
  const pageDiagrams = await diagrams();

  let source: DashboardSource;
  if (target instanceof Server) source = new LocalSource(target);
  else if (target instanceof Connection) source = new RemoteSource(target, options.timeout ?? 5000);
  else throw new ConverseError('INVALID_ARGUMENT', 'serveDashboard(target): target must be a Server (from listen) or a Connection (from connect).');
  await source.start();

  const streams = new Set<http.ServerResponse>();
  /** Session machines' diagrams by graph key (laid out once), and which each stream has been sent. */
  const sessionDiagrams = new Map<string, string>();
  const sentDiagrams = new WeakMap<http.ServerResponse, Set<string>>();
  const MAX_SESSION_DIAGRAMS = 64;

  /** Lay out the session machines `state` shows that are not laid out yet. */
  const layOutSessions = async (state: DashboardState): Promise<void> => {
    const wanted = new Set<string>();
    for (const c of [...state.connections, ...state.recentlyClosed]) if (c.session !== undefined) wanted.add(c.session.graph);
    const missing = [...wanted].filter((key) => !sessionDiagrams.has(key)).slice(0, Math.max(0, MAX_SESSION_DIAGRAMS - sessionDiagrams.size));
    if (missing.length === 0) return;
    const graphs = await source.graphs(missing);
    for (const key of missing) {
      const graph = graphs[key];
      if (graph === undefined) continue;
      sessionDiagrams.set(key, await machineSvg(graph, { idPrefix: `s${sessionDiagrams.size}`, className: 'session' }));
    }
  };
  /** Send `response` the diagrams it lacks, before the state that refers to them. */
  const sendDiagrams = (response: http.ServerResponse): void => {
    let sent = sentDiagrams.get(response);
    if (sent === undefined) sentDiagrams.set(response, (sent = new Set()));
    for (const [key, svg] of sessionDiagrams) {
      if (sent.has(key)) continue;
      sent.add(key);
      send(response, 'diagram', { key, svg });
    }
  };
  let closed = false;
  let pushing = false;
  let pushAgain = false;
  let pushTimer: NodeJS.Timeout | undefined;

  const send = (response: http.ServerResponse, event: string, data: unknown): void => {
    response.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };

  /** Send the full state to every stream (coalesced: one computation at a time). */
  const pushState = async (): Promise<void> => {
    if (pushing) {
      pushAgain = true;
      return;
    }
    pushing = true;
    try {
      do {
        pushAgain = false;
        if (streams.size === 0 || closed) break;
        const state = await source.state(maxCards);
        await layOutSessions(state).catch(() => undefined);
        for (const response of streams) {
          sendDiagrams(response);
          send(response, 'state', state);
        }
      } while (pushAgain);
    } catch {
      // A failed refresh is retried at the next tick.
    } finally {
      pushing = false;
    }
  };

  const schedulePush = (): void => {
    if (pushTimer !== undefined || closed) return;
    pushTimer = setTimeout(() => {
      pushTimer = undefined;
      void pushState();
    }, 30);
  };

  const unsubscribe = source.subscribe((event: IntrospectionEvent) => {
    if (streams.size === 0) return;
    for (const response of streams) send(response, 'transition', event);
    schedulePush();
  });

  const tick = setInterval(() => {
    if (streams.size > 0) void pushState();
  }, interval);
  tick.unref();
  const keepAlive = setInterval(() => {
    for (const response of streams) response.write(': keep-alive\n\n');
  }, 15_000);
  keepAlive.unref();

  let ended!: (error: ConverseError) => void;
  const endedPromise = new Promise<ConverseError>((resolve) => (ended = resolve));
  source.onEnd((error) => {
    ended(error);
    void pushState();
  });

  let actualPort = port;
  const allowedHosts = (): Set<string> => {
    const names = new Set<string>([`127.0.0.1:${actualPort}`, `localhost:${actualPort}`, `[::1]:${actualPort}`]);
    names.add(`${host.includes(':') ? `[${host}]` : host}:${actualPort}`);
    return names;
  };

  const httpServer = http.createServer((request, response) => {
    const common = {
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      'X-Frame-Options': 'DENY',
    };
    if (!allowedHosts().has((request.headers.host ?? '').toLowerCase())) {
      response.writeHead(403, { ...common, 'Content-Type': 'text/plain; charset=utf-8' });
      response.end('Forbidden: unexpected Host header (the dashboard answers only to its own address).\n');
      return;
    }
    // Every request, the event stream included, must prove it knows the token: nothing else is
    // looked at before this, and a refusal carries no data.
    const url = new URL(request.url ?? '/', 'http://dashboard.invalid');
    const proof = token.check(request, url);
    if (proof === undefined) {
      response.writeHead(403, { ...common, 'Content-Type': 'text/plain; charset=utf-8' });
      response.end('Forbidden: this dashboard needs its token. Open the URL it printed (http://…/?token=…).\n');
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { ...common, Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' });
      response.end('Method not allowed: the dashboard is read-only.\n');
      return;
    }
    const path = url.pathname;
    if (path === '/' || path === '/index.html') {
      const nonce = randomBytes(16).toString('base64');
      const body = dashboardPage({ nonce, title, ...pageDiagrams });
      response.writeHead(200, {
        ...common,
        // The page's own requests (the event stream) then carry the token in a cookie that
        // scripts cannot read and other sites cannot make the browser send.
        ...(proof === 'cookie' ? {} : { 'Set-Cookie': token.cookie() }),
        'Content-Type': 'text/html; charset=utf-8',
        'Content-Security-Policy': `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
      });
      response.end(body);
      return;
    }
    if (path === '/api/snapshot') {
      source.state(maxCards).then(
        (state) => {
          response.writeHead(200, { ...common, 'Content-Type': 'application/json; charset=utf-8' });
          response.end(JSON.stringify(state));
        },
        (error: unknown) => {
          response.writeHead(502, { ...common, 'Content-Type': 'application/json; charset=utf-8' });
          response.end(JSON.stringify({ error: { code: (error as ConverseError).code ?? 'ERROR', message: String((error as Error).message ?? error) } }));
        },
      );
      return;
    }
    if (path === '/api/machines') {
      response.writeHead(200, { ...common, 'Content-Type': 'application/json; charset=utf-8' });
      response.end(JSON.stringify({ connection: machineGraph(connectionMachine), supervisor: machineGraph(supervisorMachine) }));
      return;
    }
    if (path === '/api/events') {
      response.writeHead(200, { ...common, 'Content-Type': 'text/event-stream; charset=utf-8', Connection: 'keep-alive' });
      response.write('retry: 1000\n\n');
      streams.add(response);
      request.on('close', () => streams.delete(response));
      void pushState();
      return;
    }
    response.writeHead(404, { ...common, 'Content-Type': 'text/plain; charset=utf-8' });
    response.end('Not found.\n');
  });

  try {
    await new Promise<void>((resolve, reject) => {
      httpServer.once('error', reject);
      httpServer.listen(port, host, () => {
        httpServer.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    clearInterval(tick);
    clearInterval(keepAlive);
    unsubscribe();
    await source.stop();
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConverseError(
      code === 'EADDRINUSE' ? 'ADDRESS_IN_USE' : 'INVALID_ARGUMENT',
      `The dashboard could not listen on ${host}:${port}: ${(error as Error).message}.${code === 'EADDRINUSE' ? ' Pick another port (0 picks a free one).' : ''}`,
      { cause: error },
    );
  }
  actualPort = (httpServer.address() as AddressInfo).port;
  token.setPort(actualPort);
  const urlHost = host.includes(':') ? `[${host}]` : host;
  const url = `http://${urlHost}:${actualPort}/?token=${token.value}`;

  let closing: Promise<void> | undefined;
  return {
    url,
    token: token.value,
    port: actualPort,
    host,
    state: () => source.state(maxCards),
    ended: endedPromise,
    close() {
      closing ??= (async () => {
        closed = true;
        clearInterval(tick);
        clearInterval(keepAlive);
        if (pushTimer !== undefined) clearTimeout(pushTimer);
        unsubscribe();
        for (const response of streams) response.end();
        streams.clear();
        const done = new Promise<void>((resolve) => httpServer.close(() => resolve()));
        httpServer.closeAllConnections();
        await done;
        await source.stop();
      })();
      return closing;
    },
  };
}
