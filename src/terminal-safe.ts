/**
 * Text that came from a peer, made safe to show on a terminal.
 *
 * A peer's strings (a protocol name in its HELLO, message types, error messages, connection
 * states reported over introspection) are attacker-controlled. Written raw, ESC sequences can
 * retitle the terminal, clear the screen, move the cursor or (on some terminals) write to files;
 * BEL rings, CR and LF forge lines, C1 controls (U+0080–U+009F) act like ESC on many terminals,
 * and bidirectional overrides reorder what is shown. Each of these is shown escaped instead, as
 * `\uXXXX` — which is also a valid escape inside a JSON string, so JSON output stays JSON.
 */

/** C0 controls, DEL, C1 controls, line/paragraph separators, bidi embeddings/overrides/isolates. */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
/** The same, but newline and tab pass (our own formatting uses them). */
const UNSAFE_KEEP_LAYOUT = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

function escape(char: string): string {
  return `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/** One field of peer text (a name, a type, a message): every control character escaped, newlines too. */
export function terminalSafe(text: unknown): string {
  const string = typeof text === 'string' ? text : String(text);
  return string.replace(UNSAFE, escape);
}

/**
 * A whole block of output about to be written: every control character escaped except newline
 * and tab. The last line of defence; fields from a peer are escaped with `terminalSafe` first,
 * so a peer cannot forge lines either.
 */
export function terminalSafeOutput(text: string): string {
  return text.replace(UNSAFE_KEEP_LAYOUT, escape);
}

/** A copy of peer data (plain objects, arrays) with every string passed through `terminalSafe`. */
export function terminalSafeDeep<T>(value: T, depth = 0): T {
  if (typeof value === 'string') return terminalSafe(value) as T;
  if (value === null || typeof value !== 'object' || depth > 64) return value;
  if (Array.isArray(value)) return value.map((item) => terminalSafeDeep(item, depth + 1)) as T;
  if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null) return value;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) out[terminalSafe(key)] = terminalSafeDeep(item, depth + 1);
  return out as T;
}

let warningsGuarded = false;

/**
 * Print process warnings with their text neutralised, in place of Node's own printer: a warning
 * can quote a peer (a library warning about a message it received). For programs that print to a
 * terminal, such as the CLI.
 */
export function guardWarnings(): void {
  if (warningsGuarded) return;
  warningsGuarded = true;
  process.removeAllListeners('warning');
  process.on('warning', (warning: Error & { code?: string }) => {
    const code = warning.code === undefined ? '' : `[${terminalSafe(warning.code)}] `;
    process.stderr.write(`(node:${process.pid}) ${code}${terminalSafe(warning.name)}: ${terminalSafe(warning.message)}\n`);
  });
}
