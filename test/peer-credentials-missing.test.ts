/**
 * Without the peer-credential addon (turned off here with INTERPROCESS_CONVERSE_NO_PEERCRED=1, as
 * a bundler that drops prebuilds/ or an unsupported platform would leave it), the library says so
 * once per process at the first listen/connect, and an ACCESS_DENIED it causes names it as the
 * cause. Runs the built library (dist/) in a child process, so the variable is read at load.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const library = new URL('../dist/src/index.js', import.meta.url).href;

/** Two servers and three connections in one process; then a server with allowUids refuses a client. */
const SCRIPT = `
import { connect, listen, generateSocketName, peerCredentialsSupported } from ${JSON.stringify(library)};
const a = generateSocketName();
const open = await listen(a, { handlers: { ping: () => 'pong' } });
const second = await listen(generateSocketName());
const clients = [await connect(a), await connect(a)];
const pong = await clients[0].ask({ type: 'ping' });
const guarded = await listen(generateSocketName(), { allowUids: [0, 1000] });
let denied;
try { (await connect(guarded.name)).destroy(); } catch (error) { denied = { code: error.code, message: error.message }; }
let unverified;
try { (await connect(a, { expectServerUid: 0 })).destroy(); } catch (error) { unverified = { code: error.code, message: error.message }; }
for (const c of clients) await c.close();
await Promise.all([open.close(), second.close(), guarded.close()]);
console.log(JSON.stringify({ supported: peerCredentialsSupported, pong, denied, unverified }));
`;

function runScript(env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--input-type=module', '-e', SCRIPT], { env: { ...process.env, ...env }, timeout: 30_000, cwd: fileURLToPath(new URL('..', import.meta.url)) }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error.code as number | undefined) ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe.runIf(process.platform === 'linux')('a missing peer-credential addon', () => {
  it('is said once at the first listen/connect, with the reason; ACCESS_DENIED it causes names it', async () => {
    const { code, stdout, stderr } = await runScript({ INTERPROCESS_CONVERSE_NO_PEERCRED: '1' });
    expect(code, stderr).toBe(0);
    const result = JSON.parse(stdout) as { supported: boolean; pong: string; denied: { code: string; message: string }; unverified: { code: string; message: string } };
    expect(result.supported).toBe(false);
    expect(result.pong).toBe('pong');
    const warnings = stderr.split('\n').filter((line) => line.includes('INTERPROCESS_CONVERSE_NO_PEERCRED'));
    expect(warnings, stderr).toHaveLength(1);
    expect(warnings[0]).toMatch(/peer credentials are unavailable \(it was turned off with INTERPROCESS_CONVERSE_NO_PEERCRED=1\)/);
    expect(result.denied.code).toBe('ACCESS_DENIED');
    expect(result.denied.message).toMatch(/uid is unknown because the server has no peer credentials \(its peer-credential addon is not loaded\)/);
    expect(result.unverified.code).toBe('ACCESS_DENIED');
    expect(result.unverified.message).toMatch(/no peer credentials \(it was turned off with INTERPROCESS_CONVERSE_NO_PEERCRED=1\)/);
  });

  it('is not mentioned when the addon is there', async () => {
    const { code, stdout, stderr } = await runScript({ INTERPROCESS_CONVERSE_NO_PEERCRED: '' });
    expect(code, stderr).toBe(0);
    const result = JSON.parse(stdout) as Record<string, unknown>;
    expect(result).toMatchObject({ supported: true, pong: 'pong' });
    expect(result.denied).toBeUndefined();
    expect(result.unverified).toBeUndefined();
    expect(stderr).not.toMatch(/peer credentials/);
  });
});
