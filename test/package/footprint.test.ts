/**
 * What importing the library leaves on a process's heap. V8 keeps every module's source text for
 * the life of the process, and node:tls or the dashboard are large; a daemon that only uses local
 * sockets should pay for neither. (A small process's heap matters for speed too: under 8 MB of
 * old generation V8 never starts incremental marking, see bench/RESULTS.md on S3.)
 * Needs the build (`npm run build`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runNode } from '../helpers/node-process.js';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '../..');

function* jsFiles(dir: string): Generator<string> {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'vendor') yield* jsFiles(full); // third-party bundles keep their licence text
    } else if (entry.name.endsWith('.js')) yield full;
  }
}

describe('footprint of the library on a process', () => {
  it('importing it loads neither node:tls, node:http nor the dashboard; they load when first used', async () => {
    const script = `
      const before = new Set(process.moduleLoadList);
      const lib = await import(${JSON.stringify(path.join(root, 'dist/src/index.js'))});
      const loaded = (name) => process.moduleLoadList.includes('NativeModule ' + name) && !before.has('NativeModule ' + name);
      const report = { tls: loaded('tls'), http: loaded('http') };
      await lib.serveDashboard({}).catch(() => {}); // loads the dashboard (and node:http), then refuses the target
      report.httpAfterDashboard = process.moduleLoadList.includes('NativeModule http');
      console.log(JSON.stringify(report));`;
    const { code, stdout, stderr } = await runNode('--input-type=module', ['-e', script]);
    expect(code, stderr).toBe(0);
    expect(JSON.parse(stdout)).toEqual({ tls: false, http: false, httpAfterDashboard: true });
  });

  it('the built JavaScript of dist/src and dist/machines is ASCII with no doc comments (stored as one byte a character, not two)', () => {
    const offenders: string[] = [];
    let files = 0;
    for (const dir of ['dist/src', 'dist/machines']) {
      for (const file of jsFiles(path.join(root, dir))) {
        files++;
        const text = fs.readFileSync(file, 'utf8');
        // eslint-disable-next-line no-control-regex
        // (A doc comment at the start of a line: tsc keeps them all. The dashboard page's inline
        // script is a string and may hold comments of its own.)
        if (/[^\x00-\x7f]/.test(text) || /^\s*\/\*\*/m.test(text)) offenders.push(path.relative(root, file));
      }
    }
    expect(files).toBeGreaterThan(50);
    expect(offenders).toEqual([]);
  });
});
