/**
 * The README's code blocks as files. A block whose first line is a comment naming a file
 * (`// protocol.ts`, `// tsconfig.json`) is that file; any other ```ts block is a snippet,
 * type-checked as a module of its own against a few declared names (an open `connection`, a
 * `server`) that the surrounding prose introduces.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { repoRoot } from './packed.js';

export interface CodeBlock {
  lang: string;
  /** The file the block names on its first line, if it does. */
  file: string | undefined;
  code: string;
  line: number;
}

export function readmeBlocks(readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8')): CodeBlock[] {
  const blocks: CodeBlock[] = [];
  const fence = /^```(\w*)\n([\s\S]*?)^```$/gm;
  for (let m = fence.exec(readme); m !== null; m = fence.exec(readme)) {
    const code = m[2]!;
    const file = /^\/\/ ([\w.-]+\.(?:ts|json))\b/.exec(code)?.[1];
    blocks.push({ lang: m[1]!, file, code, line: readme.slice(0, m.index).split('\n').length });
  }
  return blocks;
}

/** Declarations the snippets may lean on, as the prose around them does. */
const PRELUDE = `import type { Connection, Server } from 'interprocess-converse';
import type { ClientApi, ServerApi } from './protocol.js';
declare global {
  /** An open client connection, as in client.ts. */
  const connection: Connection<ClientApi, ServerApi>;
  /** A listening server, as in daemon.ts. */
  const server: Server<ServerApi, ClientApi>;
}
export {};
`;

/** Write the README's TypeScript into `dir` (named files as named, snippets as snippet-<line>.ts). */
export function writeReadmeProject(dir: string): { files: string[]; tsconfig: string } {
  fs.mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  let tsconfig: string | undefined;
  for (const block of readmeBlocks()) {
    if (block.file === 'tsconfig.json') tsconfig = block.code;
    if (block.lang !== 'ts') continue;
    const file = block.file ?? `snippet-${block.line}.ts`;
    if (files.includes(file)) throw new Error(`README names ${file} twice`);
    files.push(file);
    // A snippet without import/export would be a script sharing one global scope with the others.
    fs.writeFileSync(path.join(dir, file), block.file === undefined ? `${block.code}\nexport {};\n` : block.code);
  }
  if (tsconfig === undefined) throw new Error('README has no tsconfig.json block');
  fs.writeFileSync(path.join(dir, 'readme-prelude.d.ts'), PRELUDE);
  return { files, tsconfig };
}
