import { nanoid } from 'nanoid';

/**
 * A connection's public id: a nanoid, held as one flat string. nanoid builds an id a character
 * at a time, which V8 keeps as a chain of nine concatenated strings (about 0.3 KiB) for as long
 * as the id lives, and a connection keeps its id for its whole life; copying it once through
 * latin1 (the alphabet is ASCII) leaves a single 21-character string.
 */
export function connectionId(): string {
  return Buffer.from(nanoid(), 'latin1').toString('latin1');
}
