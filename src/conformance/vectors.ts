import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { TypedValue } from './typed-value.js';

/**
 * The test vectors in test-vectors/*.json (docs/CONFORMANCE.md describes them). They ship with the
 * package and are read at run time, so the kit and an implementer's unit tests use the same bytes.
 */

export interface ValueVector {
  name: string;
  section: string;
  hex: string;
  value?: TypedValue;
  canonical?: boolean;
  error?: string;
}

export interface EnvelopeVector {
  name: string;
  section: string;
  hex: string;
  /** The meaning of a valid envelope: its kind name, id and the other elements. */
  meaning?: { kind: string; id?: number; elements?: TypedValue[] };
  error?: string;
}

/** The repository's test-vectors directory (next to dist/ in the package). */
export function vectorsDirectory(): string {
  // This file is dist/src/conformance/vectors.js (or src/conformance/vectors.ts in tests).
  const here = fileURLToPath(new URL('.', import.meta.url));
  for (const candidate of ['../../test-vectors', '../../../test-vectors']) {
    const dir = fileURLToPath(new URL(candidate, `file://${here}`));
    if (fs.existsSync(dir)) return dir;
  }
  throw new Error('test-vectors/ not found next to the package');
}

function load<T>(file: string): T[] {
  const doc = JSON.parse(fs.readFileSync(`${vectorsDirectory()}/${file}`, 'utf8')) as { vectors: T[] };
  return doc.vectors;
}

export const valueVectors = (): ValueVector[] => load<ValueVector>('values.json');
export const envelopeVectors = (): EnvelopeVector[] => load<EnvelopeVector>('envelopes.json');
