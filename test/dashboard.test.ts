/**
 * The live dashboard: the machine diagram drawn from the machine definitions, the HTTP endpoints,
 * and end to end in a real browser — headless Chromium (Debian's `chromium` package) driven by
 * playwright-core — with client processes that connect and are killed while the page watches.
 *
 * `UPDATE_SCREENSHOT=1 npm test -- test/dashboard.test.ts` also rewrites docs/dashboard.png.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { setup, type AnyStateMachine } from 'xstate';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectionMachine, supervisorMachine } from '../machines/index.js';
import { connect, listen, machineGraph, serveDashboard, type DashboardState, type Server } from '../src/index.js';
import { activePaths } from '../src/machine-graph.js';
import { machineSvg } from '../src/dashboard/layout.js';
import type { ClientApi, ServerApi } from './fixtures/protocol.js';
import { cleanup, onCleanup, sleep, socketName } from './helpers/cleanup.js';
import { startFixture, type Fixture } from './helpers/fixture.js';
import { canSwitchUser, NOBODY } from './reliability/support.js';
import { serverHandlers } from './helpers/scenario.js';

afterEach(cleanup);

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const hasChromium = fs.existsSync(CHROMIUM);
if (!hasChromium) {
  console.warn(`test/dashboard.test.ts: the browser tests are SKIPPED: no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH).`);
}
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

async function startServer(options: { introspection?: boolean; session?: AnyStateMachine } = {}): Promise<{ name: string; server: Server<ServerApi, ClientApi> }> {
  const name = socketName();
  const server = await listen<ServerApi, ClientApi>(name, { handlers: serverHandlers(), ...options });
  onCleanup(() => server.close({ timeout: 300 }));
  return { name, server };
}

async function startDashboard(target: Parameters<typeof serveDashboard>[0]) {
  const dashboard = await serveDashboard(target, { interval: 200 });
  onCleanup(() => dashboard.close());
  return dashboard;
}

/** A dashboard endpoint, with the token as `?token=` (what a script would do). */
function endpoint(dashboard: { port: number; token: string }, path: string, token: string | null = dashboard.token): string {
  return `http://127.0.0.1:${dashboard.port}/${path}${token === null ? '' : `?token=${token}`}`;
}

/** A raw HTTP/1.1 GET (fetch cannot set Host); resolves with the whole response text. */
function rawGet(port: number, path: string, headers: Record<string, string>): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    const socket = net.connect(port, '127.0.0.1', () => socket.end(`GET ${path} HTTP/1.1\r\n${lines}Connection: close\r\n\r\n`));
    let text = '';
    socket.on('data', (chunk) => (text += chunk));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
}

describe('the machine diagram comes from the machine definition', () => {
  it('reads states and transitions of the connection machine', () => {
    const graph = machineGraph(connectionMachine);
    expect(graph.id).toBe('connection');
    expect(graph.states.map((s) => s.key)).toEqual(['handshake', 'active', 'closing', 'closed']);
    expect(graph.states.find((s) => s.initial)!.key).toBe('handshake');
    expect(graph.states.find((s) => s.final)!.key).toBe('closed');
    const edge = (source: string, target: string): string[] => graph.transitions.filter((t) => t.source === source && t.target === target).map((t) => t.label);
    expect(edge('handshake', 'active')).toEqual(['HANDSHAKE_SUCCEEDED']);
    expect(edge('handshake', 'closed')).toContain('DEADLINE.HANDSHAKE');
    expect(edge('active', 'closing')).toEqual(expect.arrayContaining(['CLOSE', 'PEER_GOODBYE']));
    expect(edge('closing', 'closed')).toEqual(expect.arrayContaining(['DEADLINE.CLOSE', 'DESTROY']));
    // Targetless transitions (closing's DRAINED only acts) are not edges.
    expect(graph.transitions.every((t) => t.source !== t.target)).toBe(true);

    const supervisor = machineGraph(supervisorMachine);
    expect(supervisor.states.map((s) => s.key)).toEqual(['listening', 'draining', 'closed']);
    expect(supervisor.transitions.find((t) => t.source === 'draining')).toMatchObject({ target: 'closed', kind: 'always', guard: 'allConnectionsEnded' });
  });

  it('draws any machine: one node per state, edges carry their events', async () => {
    const toy = setup({}).createMachine({
      id: 'toy',
      initial: 'a',
      states: { a: { on: { GO: 'b', SKIP: 'c' } }, b: { after: { 100: 'c' }, on: { BACK: 'a' } }, c: { type: 'final' } },
    });
    const graph = machineGraph(toy);
    expect(graph.transitions.map((t) => `${t.source}-${t.label}->${t.target}`).sort()).toEqual(['a-GO->b', 'a-SKIP->c', 'b-BACK->a', 'b-after 100 ms->c']);
    const svg = await machineSvg(graph);
    expect(svg.startsWith('<svg')).toBe(true);
    for (const key of ['a', 'b', 'c']) expect(svg).toContain(`data-state="${key}"`);
    expect(svg).toContain('>GO<');
    expect(svg).toContain('after 100 ms');
    expect(svg.match(/class="edge"/g)).toHaveLength(4);
    expect(await machineSvg(graph, { labels: false })).not.toContain('>GO<');
  });

  it('keeps nested and parallel states (with @xstate/graph) and lays them out inside their parents (with elkjs)', async () => {
    const nested = setup({}).createMachine({
      id: 'shop',
      initial: 'idle',
      states: {
        idle: { on: { login: 'authed' } },
        authed: {
          initial: 'browsing',
          on: { logout: 'idle' },
          states: { browsing: { on: { buy: 'paying' } }, paying: { after: { 500: 'browsing' }, on: { paid: 'done' } }, done: { type: 'final' } },
        },
        busy: { type: 'parallel', states: { upload: { initial: 'x', states: { x: { on: { T: 'y' } }, y: {} } }, ui: { initial: 'p', states: { p: { always: 'q' }, q: {} } } } },
      },
    });
    const graph = machineGraph(nested);
    expect(graph.states.map((s) => s.path)).toEqual(['idle', 'authed', 'authed.browsing', 'authed.paying', 'authed.done', 'busy', 'busy.upload', 'busy.upload.x', 'busy.upload.y', 'busy.ui', 'busy.ui.p', 'busy.ui.q']);
    expect(graph.states.find((s) => s.path === 'authed.browsing')).toMatchObject({ parent: 'authed', initial: true, type: 'atomic' });
    expect(graph.states.find((s) => s.path === 'busy')).toMatchObject({ type: 'parallel', initial: false });
    expect(graph.states.find((s) => s.path === 'authed.done')).toMatchObject({ final: true });
    const edges = graph.transitions.map((t) => `${t.source}-${t.label}->${t.target}`);
    expect(edges).toEqual(expect.arrayContaining(['idle-login->authed', 'authed-logout->idle', 'authed.browsing-buy->authed.paying', 'authed.paying-after 500 ms->authed.browsing', 'busy.upload.x-T->busy.upload.y', 'busy.ui.p-always->busy.ui.q']));
    expect(activePaths({ authed: 'paying' })).toEqual(['authed', 'authed.paying']);
    expect(activePaths({ busy: { upload: 'x', ui: 'q' } })).toEqual(['busy', 'busy.upload', 'busy.upload.x', 'busy.ui', 'busy.ui.q']);

    const svg = await machineSvg(graph);
    const box = (path: string): { x: number; y: number; w: number; h: number } => {
      const m = new RegExp(`data-state="${path.replace(/\./g, '\\.')}"><title>[^<]*</title><rect x="([\\d.]+)" y="([\\d.]+)" width="([\\d.]+)" height="([\\d.]+)"`).exec(svg);
      expect(m, path).not.toBeNull();
      return { x: Number(m![1]), y: Number(m![2]), w: Number(m![3]), h: Number(m![4]) };
    };
    // Every state is drawn, each child inside its parent's box.
    for (const s of graph.states) {
      const child = box(s.path);
      if (s.parent === undefined) continue;
      const parent = box(s.parent);
      expect(child.x).toBeGreaterThan(parent.x);
      expect(child.y).toBeGreaterThan(parent.y);
      expect(child.x + child.w).toBeLessThan(parent.x + parent.w);
      expect(child.y + child.h).toBeLessThan(parent.y + parent.h);
    }
    expect(svg).toContain('class="node compound parallel"');
    expect(svg).toContain('class="node compound region');
    expect(svg.match(/class="edge"/g)).toHaveLength(new Set(edges.map((e) => e.replace(/-[^>]*>/, '->'))).size);
  });
});

describe('serveDashboard over HTTP', () => {
  it('binds to loopback, serves the page, a JSON snapshot and an event stream; refuses foreign hosts and writes', async () => {
    const { name, server } = await startServer();
    const dashboard = await startDashboard(server);
    expect(dashboard.host).toBe('127.0.0.1');
    expect(dashboard.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(dashboard.url).toBe(`http://127.0.0.1:${dashboard.port}/?token=${dashboard.token}`);

    const page = await fetch(dashboard.url);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    const html = await page.text();
    expect(html).toContain('data-machine="connection"');
    expect(html).toContain('data-machine="supervisor"');
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+stylesheet|https?:\/\/(?!www\.w3\.org)/); // nothing fetched from elsewhere

    const connection = await connect<ServerApi, ClientApi>(name);
    onCleanup(() => connection.close({ timeout: 300 }));
    await connection.ask({ type: 'add', a: 1, b: 2 });
    const state = (await (await fetch(endpoint(dashboard, 'api/snapshot'))).json()) as DashboardState;
    expect(state.mode).toBe('local');
    expect(state.server).toMatchObject({ socket: name, state: 'listening', live: 1, accepted: 1 });
    expect(state.connections).toHaveLength(1);
    expect(state.connections[0]!).toMatchObject({ state: 'active', peer: { pid: process.pid } });
    expect(state.connections[0]!.stats.messagesIn).toBe(1);
    expect(state.timeline.map((e) => (e.kind === 'connection' ? e.to : e.kind))).toEqual(['handshake', 'active']);

    // DNS rebinding: a page on another name that resolves here gets nothing.
    // Even with the token.
    const foreign = await rawGet(dashboard.port, `/api/snapshot?token=${dashboard.token}`, { Host: 'attacker.example' });
    expect(foreign).toMatch(/^HTTP\/1\.1 403/);
    expect((await fetch(endpoint(dashboard, 'api/snapshot'), { method: 'POST' })).status).toBe(405);
    expect((await fetch(endpoint(dashboard, 'nope'))).status).toBe(404);

    // The event stream starts with the whole state, then pushes transitions as they happen.
    const stream = await fetch(endpoint(dashboard, 'api/events'));
    expect(stream.headers.get('content-type')).toContain('text/event-stream');
    const reader = stream.body!.getReader();
    let text = '';
    const readUntil = async (needle: string): Promise<void> => {
      const deadline = Date.now() + 5000;
      while (!text.includes(needle)) {
        if (Date.now() > deadline) throw new Error(`no "${needle}" in the stream: ${text.slice(-500)}`);
        const { value, done } = await reader.read();
        if (done) throw new Error('the stream ended');
        text += Buffer.from(value).toString('utf8');
      }
    };
    await readUntil('event: state');
    const second = await connect<ServerApi, ClientApi>(name);
    await second.close();
    await readUntil('"to":"closed"');
    expect(text).toContain('event: transition');

    // close() ends the stream and frees the port.
    const ended = (async () => {
      for (;;) if ((await reader.read()).done) return true;
    })();
    await dashboard.close();
    expect(await ended).toBe(true);
    await expect(fetch(dashboard.url)).rejects.toThrow();
  });

  it('every request needs the token: without it, or with a wrong one, 403 and no data; the page sets an HttpOnly SameSite=Strict cookie that lets the rest in', async () => {
    const { name, server } = await startServer();
    const client = await connect<ServerApi, ClientApi>(name);
    onCleanup(() => client.close({ timeout: 300 }));
    const dashboard = await startDashboard(server);
    const wrong = `${dashboard.token.slice(0, -1)}${dashboard.token.endsWith('A') ? 'B' : 'A'}`;
    for (const path of ['', 'index.html', 'api/snapshot', 'api/events', 'api/machines', 'nope']) {
      for (const token of [null, wrong, '', 'x'.repeat(10_000)]) {
        const response = await fetch(endpoint(dashboard, path, token));
        const body = await response.text();
        expect(response.status, `/${path} with ${token === null ? 'no token' : 'a wrong token'}`).toBe(403);
        expect(response.headers.get('set-cookie')).toBeNull();
        expect(body).not.toContain(name);
        expect(body).not.toContain(String(process.pid));
        expect(body).not.toContain('data-machine');
      }
    }
    expect((await fetch(endpoint(dashboard, 'api/snapshot', null), { headers: { cookie: `ic-dashboard-${dashboard.port}=${wrong}` } })).status).toBe(403);
    // Another dashboard's cookie (cookies are per host, not per port) does not let you in.
    expect((await fetch(endpoint(dashboard, 'api/snapshot', null), { headers: { cookie: `ic-dashboard-1=${dashboard.token}` } })).status).toBe(403);

    // The page with the token sets the cookie; the cookie alone then opens every endpoint, the stream included.
    const page = await fetch(dashboard.url);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    const cookie = page.headers.get('set-cookie')!;
    expect(cookie).toBe(`ic-dashboard-${dashboard.port}=${dashboard.token}; HttpOnly; SameSite=Strict; Path=/`);
    const jar = { cookie: cookie.split(';')[0]! };
    const snapshot = await fetch(endpoint(dashboard, 'api/snapshot', null), { headers: jar });
    expect(snapshot.status).toBe(200);
    expect(((await snapshot.json()) as DashboardState).server.socket).toBe(name);
    const stream = await fetch(endpoint(dashboard, 'api/events', null), { headers: jar });
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toContain('text/event-stream');
    await stream.body!.cancel();
    // A script may send it as a bearer token instead.
    expect((await fetch(endpoint(dashboard, 'api/snapshot', null), { headers: { authorization: `Bearer ${dashboard.token}` } })).status).toBe(200);
    // The Host check still comes first.
    expect(await rawGet(dashboard.port, '/api/snapshot', { Host: 'attacker.example', Cookie: jar.cookie })).toMatch(/^HTTP\/1\.1 403/);
  });

  it.runIf(canSwitchUser())('another local user (nobody) without the token gets 403 and no data from any endpoint; with it, the page', async () => {
    const { name, server } = await startServer();
    const client = await connect<ServerApi, ClientApi>(name);
    onCleanup(() => client.close({ timeout: 300 }));
    const dashboard = await startDashboard(server);
    const probe = `
      const [port, token] = process.argv.slice(1);
      const results = [];
      for (const path of ['', 'api/snapshot', 'api/events', 'api/machines']) {
        for (const t of ['', token]) {
          const response = await fetch('http://127.0.0.1:' + port + '/' + path + (t ? '?token=' + t : ''));
          const body = path === 'api/events' && response.status === 200 ? (await response.body.cancel(), '') : await response.text();
          results.push({ path, withToken: t !== '', status: response.status, body });
        }
      }
      console.log(JSON.stringify({ uid: process.getuid(), results }));`;
    const out = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--input-type=module', '-e', probe, String(dashboard.port), dashboard.token], { uid: NOBODY, gid: NOBODY }, (error, stdout) => (error ? reject(error) : resolve(stdout)));
    });
    const { uid, results } = JSON.parse(out) as { uid: number; results: Array<{ path: string; withToken: boolean; status: number; body: string }> };
    expect(uid).toBe(NOBODY);
    for (const r of results.filter((r) => !r.withToken)) {
      expect(r.status, `/${r.path}`).toBe(403);
      expect(r.body).not.toContain(name);
      expect(r.body).not.toContain(String(process.pid));
      expect(r.body).not.toMatch(/"pid"|"uid"|data-machine/);
    }
    // The token, not the uid, is the key.
    expect(results.filter((r) => r.withToken).map((r) => r.status)).toEqual([200, 200, 200, 200]);
  });

  it('a token of your own must be long and plain enough', async () => {
    const { server } = await startServer();
    await expect(serveDashboard(server, { token: 'short' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(serveDashboard(server, { token: 'a'.repeat(30) + '&x=1' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    const mine = await serveDashboard(server, { token: 'A'.repeat(22), interval: 200 });
    onCleanup(() => mine.close());
    expect(mine.url).toBe(`http://127.0.0.1:${mine.port}/?token=${'A'.repeat(22)}`);
  });

  it('refuses a bad target or port', async () => {
    await expect(serveDashboard({} as never)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    const { server } = await startServer();
    await expect(serveDashboard(server, { port: 70000 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});

describe.skipIf(!hasChromium)(
  `the dashboard in headless Chromium${hasChromium ? '' : ` (SKIPPED: no Chromium at ${CHROMIUM}; apt-get install chromium)`}`,
  () => {
    let context: BrowserContext;
    let profile: string;

    beforeAll(async () => {
      profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ic-chromium-'));
      context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: CHROMIUM_ARGS,
        viewport: { width: 1440, height: 960 },
        timeout: 20_000,
      });
    });

    afterAll(async () => {
      await context?.close();
      if (profile) fs.rmSync(profile, { recursive: true, force: true });
    });

    /** Errors the open pages reported (script errors, console errors); checked at the end of each test. */
    let problems: string[] = [];

    async function open(url: string): Promise<Page> {
      const page = await context.newPage();
      onCleanup(() => page.close());
      problems = [];
      page.on('pageerror', (error) => problems.push(String(error)));
      page.on('console', (message) => {
        if (message.type() === 'error') problems.push(message.text());
      });
      await page.goto(url);
      await page.waitForSelector('body[data-ready="true"]', { timeout: 10_000 });
      // The page must never reload: everything below arrives over the event stream.
      await page.evaluate('window.marker = 42');
      return page;
    }

    const text = async (page: Page, selector: string): Promise<string> => (await page.locator(selector).first().textContent()) ?? '';

    /** Wait until the element's text passes `test` (it changes only through the event stream). */
    async function waitForText(page: Page, selector: string, test: (text: string) => boolean, timeout = 5000): Promise<void> {
      const deadline = Date.now() + timeout;
      for (;;) {
        const current = await page.locator(selector).first().textContent({ timeout: 1000 }).catch(() => null);
        if (current !== null && test(current)) return;
        if (Date.now() > deadline) throw new Error(`${selector} shows ${JSON.stringify(current)} after ${timeout} ms`);
        await sleep(50);
      }
    }

    it('shows client processes as they connect, work and are killed, live', async () => {
      const { name, server } = await startServer();
      const dashboard = await startDashboard(server);
      const alice = await startFixture('client', [name]);
      const bob = await startFixture('client', [name]);
      const page = await open(dashboard.url);
      // The token is kept in an HttpOnly, SameSite=Strict cookie and dropped from the address bar.
      expect(page.url()).toBe(`http://127.0.0.1:${dashboard.port}/`);
      const cookies = await context.cookies(`http://127.0.0.1:${dashboard.port}/`);
      expect(cookies.find((c) => c.name === `ic-dashboard-${dashboard.port}`)).toMatchObject({ value: dashboard.token, httpOnly: true, sameSite: 'Strict' });
      expect(await page.evaluate('document.cookie')).toBe('');

      const card = (fixture: Fixture, where = '#cards'): string => `${where} .card[data-pid="${fixture.pid}"]`;
      for (const fixture of [alice, bob]) {
        await page.waitForSelector(`${card(fixture)}[data-state="active"]`, { timeout: 10_000 });
        // The card's own diagram highlights the state it is in.
        expect(await page.locator(`${card(fixture)} svg g.node.current`).getAttribute('data-state')).toBe('active');
        expect(await text(page, `${card(fixture)} [data-field="peer"]`)).toContain(`pid ${fixture.pid}`);
      }
      expect(await text(page, '[data-testid="live"]')).toBe('2');
      expect(await text(page, '#supervisor [data-field="server-state"]')).toBe('listening');
      expect(await page.locator('#supervisor svg g.node.current').getAttribute('data-state')).toBe('listening');
      expect(await page.locator('#machine svg g.node.occupied').getAttribute('data-state')).toBe('active');

      // Alice works: the counters follow.
      for (let i = 0; i < 3; i++) await alice.request({ op: 'ask', event: { type: 'add', a: i, b: 1 } });
      await waitForText(page, `${card(alice)} [data-field="messages"]`, (t) => t.startsWith('in 3 '));
      // The server asks Bob something he never answers: a pending ask on his card.
      const bobServerSide = [...server.connections.values()].find((c) => c.peer.pid === bob.pid)!;
      void bobServerSide.ask({ type: 'hang' }, { timeout: 30_000 }).catch(() => undefined);
      await waitForText(page, `${card(bob)} [data-field="pending"]`, (t) => t === '1');

      // Bob is killed: his card leaves the live list, shows up closed with the error, and the timeline says so.
      await bob.kill('SIGKILL');
      await page.waitForSelector(card(bob), { state: 'detached', timeout: 10_000 });
      await page.waitForSelector(`${card(bob, '#closed-cards')}[data-state="closed"]`, { timeout: 5000 });
      expect(await text(page, `${card(bob, '#closed-cards')} [data-field="error"]`)).toContain('CONNECTION_CLOSED');
      expect(await page.locator(`${card(bob, '#closed-cards')} svg g.node.current`).getAttribute('data-state')).toBe('closed');
      expect(await page.locator(`#events li[data-connection-id="${bobServerSide.id}"][data-to="closed"]`).count()).toBe(1);
      await waitForText(page, '[data-testid="live"]', (t) => t === '1');

      // Carol connects: a new card appears.
      const carol = await startFixture('client', [name]);
      await page.waitForSelector(`${card(carol)}[data-state="active"]`, { timeout: 10_000 });
      expect(await text(page, '[data-testid="accepted"]')).toBe('3');
      expect(await page.locator('#cards .card').count()).toBe(2);
      expect(await page.evaluate('window.marker')).toBe(42);

      // Everything the page shows fits the viewport: take the README's picture.
      await carol.request({ op: 'ask', event: { type: 'echo', value: 'hello' } });
      await page.waitForTimeout(300);
      const shot = path.join(profile, 'dashboard.png');
      await page.screenshot({ path: shot, fullPage: true });
      expect(fs.statSync(shot).size).toBeGreaterThan(10_000);
      if (process.env.UPDATE_SCREENSHOT === '1') fs.copyFileSync(shot, new URL('../docs/dashboard.png', import.meta.url));
      expect(problems, 'errors in the page').toEqual([]);
    });

    it("shows each connection's nested session machine with its current state lit, and a long-running handler with its age (over introspection)", async () => {
      // The protocol as the daemon's author modelled it: a greeting, then work with nested states.
      const dialogue = setup({}).createMachine({
        id: 'dialogue',
        initial: 'greeting',
        states: {
          greeting: { on: { add: 'working' } },
          working: { initial: 'adding', on: { slow: '.waiting' }, states: { adding: { on: { add: 'adding' } }, waiting: {} } },
        },
      });
      const { name } = await startServer({ introspection: true, session: dialogue });
      const observer = await connect<ServerApi, ClientApi>(name, { handlers: {} });
      onCleanup(() => observer.close({ timeout: 300 }));
      const dashboard = await startDashboard(observer);
      const alice = await startFixture('client', [name]);
      const page = await open(dashboard.url);
      const card = `#cards .card[data-pid="${alice.pid}"]`;
      await page.waitForSelector(`${card}[data-state="active"]`, { timeout: 10_000 });
      // Her session is drawn, in its initial state.
      await page.waitForSelector(`${card} .session[data-current="greeting"] svg[data-machine="dialogue"] g.node.active[data-state="greeting"]`, { timeout: 10_000 });

      await alice.request({ op: 'ask', event: { type: 'add', a: 1, b: 2 } });
      // A handler that runs for a minute: it shows on her card with its age.
      void alice.request({ op: 'ask', event: { type: 'slow', ms: 60_000, value: 'late' } }).catch(() => undefined);
      const session = `${card} .session[data-current="working.waiting"]`;
      await page.waitForSelector(session, { timeout: 10_000 });
      // The nested state is lit, inside its lit parent; nothing else is.
      const lit = await page.locator(`${session} svg g.node.active`).evaluateAll((nodes) => nodes.map((n) => `${n.getAttribute('data-state')}:${n.classList.contains('compound') ? 'box' : 'state'}`));
      expect(lit.sort()).toEqual(['working.waiting:state', 'working:box']);
      const inside = await page.locator(session).evaluate((el) => {
        const box = (path: string) => el.querySelector(`g.node[data-state="${path}"] > rect`)!.getBoundingClientRect();
        const [outer, inner] = [box('working'), box('working.waiting')];
        return inner.left > outer.left && inner.right < outer.right && inner.top > outer.top && inner.bottom < outer.bottom;
      });
      expect(inside).toBe(true);
      // The last transitions, newest first, with the message that caused each.
      const moves = await page.locator(`${session} ol.moves li span`).allTextContents();
      expect(moves.slice(0, 3)).toEqual(['slow → working.waiting', 'add → working.adding', 'start → greeting']);
      // The edge just taken is marked.
      expect(await page.locator(`${session} svg g.edge.last`).getAttribute('data-target')).toBe('working.waiting');

      const handler = `${card} .work li[data-work="handling"][data-type="slow"]`;
      await page.waitForSelector(handler, { timeout: 10_000 });
      const deadline = Date.now() + 15_000;
      while (Number((await page.locator(`${handler} [data-field="work-age"]`).getAttribute('data-age')) ?? 0) < 2000) {
        if (Date.now() > deadline) throw new Error('the handler never aged to 2 s on the page');
        await sleep(100);
      }
      if (process.env.DEBUG_SHOT) await page.screenshot({ path: process.env.DEBUG_SHOT, fullPage: true });
      expect(await page.locator(handler).textContent()).toMatch(/^handling #\d+ slow · \d+\.\d s$/);
      expect(problems, 'errors in the page').toEqual([]);
    });

    it('without the token the browser gets 403 and an empty page', async () => {
      const { server } = await startServer();
      const dashboard = await startDashboard(server);
      const page = await context.newPage();
      onCleanup(() => page.close());
      const response = await page.goto(`http://127.0.0.1:${dashboard.port}/`);
      expect(response!.status()).toBe(403);
      expect(await page.locator('[data-machine]').count()).toBe(0);
    });

    it('shows a daemon over introspection (the CLI mode)', async () => {
      const { name } = await startServer({ introspection: true });
      const observer = await connect<ServerApi, ClientApi>(name, { handlers: {} });
      onCleanup(() => observer.close({ timeout: 300 }));
      const dashboard = await startDashboard(observer);
      const page = await open(dashboard.url);
      expect(await text(page, '[data-field="mode"]')).toBe('over introspection');
      // Its own connection is there, marked.
      await page.waitForSelector('#cards .card[data-state="active"]', { timeout: 5000 });
      expect(await text(page, '#cards .card [data-field="state"]')).toContain('this dashboard');

      const dave = await startFixture('client', [name]);
      await page.waitForSelector(`#cards .card[data-pid="${dave.pid}"][data-state="active"]`, { timeout: 10_000 });
      await dave.kill('SIGKILL');
      await page.waitForSelector(`#closed-cards .card[data-pid="${dave.pid}"][data-state="closed"]`, { timeout: 10_000 });
      expect(await text(page, `#closed-cards .card[data-pid="${dave.pid}"] [data-field="error"]`)).toContain('CONNECTION_CLOSED');
      expect(await text(page, '[data-testid="live"]')).toBe('1');
      expect(problems, 'errors in the page').toEqual([]);
    });
  },
);
