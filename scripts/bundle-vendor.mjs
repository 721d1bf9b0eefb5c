// After tsc: put the dashboard's two dev-dependency engines into dist, so that the published
// package needs no runtime dependency beyond xstate, msgpackr and nanoid (see
// src/vendor/*.ts for why each is here and docs/OBSERVABILITY.md for the choice).
//
// - @xstate/graph (MIT): bundled with esbuild into dist/src/vendor/xstate-graph.js,
//   replacing tsc's re-export; xstate stays an import so the user's own xstate is read.
// - elkjs (EPL-2.0): its self-contained elk.bundled.js copied unmodified, with its licence.
import { build } from 'esbuild';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist/src/vendor');
const require = createRequire(path.join(root, 'package.json'));
fs.mkdirSync(out, { recursive: true });

await build({
  entryPoints: [path.join(root, 'src/vendor/xstate-graph.ts')],
  outfile: path.join(out, 'xstate-graph.js'),
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['xstate'],
  legalComments: 'inline',
  logLevel: 'warning',
  banner: { js: '// @xstate/graph (MIT licence, https://github.com/statelyai/xstate), bundled at build time by scripts/bundle-vendor.mjs.' },
});
const graphPackage = path.dirname(require.resolve('@xstate/graph/package.json'));
fs.copyFileSync(path.join(graphPackage, 'LICENSE'), path.join(out, 'xstate-graph.LICENSE'));

const elkPackage = path.dirname(require.resolve('elkjs/package.json'));
fs.copyFileSync(path.join(elkPackage, 'lib/elk.bundled.js'), path.join(out, 'elk.bundled.cjs'));
fs.copyFileSync(path.join(elkPackage, 'LICENSE.md'), path.join(out, 'elk.LICENSE.md'));
