import type { ConverseError } from '../errors.js';
import { terminalSafe } from '../terminal-safe.js';

/**
 * Errors of this side's own making that no asker can be told of (a tell's handler threw, a tell
 * was dropped, a reply failed the declared protocol) and that no one listens for: said as a
 * process warning, the way an unhandled 'error' event would be heard, but once per kind (error
 * code and message type) per process, so 300 dropped tells make one line, not 300.
 *
 * The kinds already said are remembered process-wide; a peer chooses message types, so that
 * memory is bounded (MAX_KINDS), after which one last warning says further kinds go unsaid.
 */
const MAX_KINDS = 256;
const said = new Set<string>();
let saturated = false;

/** Turned off per server or connection with `warnUnobservedErrors: false`; a listener observes them instead. */
export function warnUnobserved(error: ConverseError, messageType: string | undefined, howToObserve: string): void {
  const kind = `${error.code}\u0000${messageType ?? ''}`;
  if (said.has(kind)) return;
  if (said.size >= MAX_KINDS) {
    if (saturated) return;
    saturated = true;
    process.emitWarning(`interprocess-converse: ${MAX_KINDS} kinds of unobserved errors were reported; further kinds are not. Observe them to see every one.`, {
      code: 'INTERPROCESS_CONVERSE_UNOBSERVED',
    });
    return;
  }
  said.add(kind);
  // Warnings go to stderr, usually a terminal, and the message quotes what the peer chose (its
  // message types): control characters are shown escaped, never interpreted.
  process.emitWarning(`interprocess-converse: ${terminalSafe(error.message)} (said once for this kind; ${howToObserve})`, {
    code: `INTERPROCESS_CONVERSE_${error.code}`,
  });
}
