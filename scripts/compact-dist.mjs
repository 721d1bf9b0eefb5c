// After tsc: rewrite the library's emitted JavaScript (dist/src, dist/machines) without comments
// and in ASCII, with esbuild's transform (no bundling, no renaming, no minifying: the code stays
// as tsc wrote it). Why: V8 keeps every module's source text on the heap for as long as the
// process lives, and one character beyond ASCII (an ellipsis in a comment) stores a whole
// module as UTF-16. The comments are for readers of src/; the published .d.ts files keep theirs.
// This takes the library's source text on a daemon's heap from about 0.9 MB to about 0.25 MB.
import { transform } from 'esbuild';
import * as fs from 'node:fs';
import ts from 'typescript';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const dirs = ['dist/src', 'dist/machines'].map((d) => path.join(root, d));
// Bundled third-party code keeps its licence comments as scripts/bundle-vendor.mjs wrote it.
const skip = path.join(root, 'dist/src/vendor');

function* jsFiles(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (full === skip) continue;
    if (entry.isDirectory()) yield* jsFiles(full);
    else if (entry.name.endsWith('.js')) yield full;
  }
}

let before = 0;
let after = 0;
for (const dir of dirs) {
  for (const file of jsFiles(dir)) {
    const source = fs.readFileSync(file, 'utf8');
    // TypeScript's printer drops every comment (esbuild keeps those in front of members).
    const parsed = ts.createSourceFile(file, source, ts.ScriptTarget.ES2022, false, ts.ScriptKind.JS);
    const bare = ts.createPrinter({ removeComments: true }).printFile(parsed);
    const { code } = await transform(bare, { loader: 'js', format: 'esm', target: 'node20', charset: 'ascii', legalComments: 'inline', sourcefile: path.relative(root, file) });
    fs.writeFileSync(file, code);
    // What the text costs on V8's heap: one byte a character if all ASCII, else two.
    before += /[^\x00-\x7f]/.test(source) ? source.length * 2 : source.length;
    after += code.length;
  }
}
console.error(`compact-dist: library source text ${(before / 1024).toFixed(0)} KiB -> ${(after / 1024).toFixed(0)} KiB on the heap`);
