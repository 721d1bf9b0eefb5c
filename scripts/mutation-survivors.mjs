#!/usr/bin/env node
// Reads Stryker's JSON report (reports/mutation/mutation.json, or the path given) and prints the
// score per file and every mutant that survived or ran without coverage, with its line and change.
// The score is Stryker's: killed and timed out over all mutants that are not ignored.
import { readFileSync } from 'node:fs';

const path = process.argv[2] ?? 'reports/mutation/mutation.json';
const report = JSON.parse(readFileSync(path, 'utf8'));
const detected = new Set(['Killed', 'Timeout']);
const undetected = new Set(['Survived', 'NoCoverage']);
let allDetected = 0;
let allValid = 0;
const lines = [];
for (const [file, { mutants, source }] of Object.entries(report.files)) {
  const valid = mutants.filter((m) => detected.has(m.status) || undetected.has(m.status));
  const found = valid.filter((m) => detected.has(m.status)).length;
  allDetected += found;
  allValid += valid.length;
  console.log(`${file.padEnd(28)} ${((100 * found) / valid.length).toFixed(2).padStart(6)}%  ${found}/${valid.length}`);
  const sourceLines = source.split('\n');
  for (const m of mutants.filter((m) => undetected.has(m.status)).sort((a, b) => a.location.start.line - b.location.start.line)) {
    const { start, end } = m.location;
    const original = start.line === end.line ? sourceLines[start.line - 1].slice(start.column - 1, end.column - 1) : `${sourceLines[start.line - 1].slice(start.column - 1)} …`;
    lines.push(`${file}:${start.line}:${start.column} ${m.status} ${m.mutatorName}: ${original.trim().slice(0, 70)} → ${String(m.replacement ?? '').replace(/\s+/g, ' ').slice(0, 70)}`);
  }
}
console.log(`${'all files'.padEnd(28)} ${((100 * allDetected) / allValid).toFixed(2).padStart(6)}%  ${allDetected}/${allValid}`);
if (lines.length > 0) console.log(`\n${lines.join('\n')}`);
