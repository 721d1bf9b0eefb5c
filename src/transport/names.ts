import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { customAlphabet } from 'nanoid';
import { ConverseError } from '../errors.js';

/**
 * Socket names: filesystem paths on Unix, `\\.\pipe\…` names on Windows. All platform knowledge
 * about addresses lives here.
 */

export const isWindows = process.platform === 'win32';

/**
 * The longest socket path the platform takes, in bytes. `sun_path` is 108 bytes on Linux and
 * 104 on macOS/BSD; one byte is kept for the terminating NUL. Node 20 silently truncates longer
 * paths (two long names then collide), so we refuse them ourselves.
 */
export const MAX_SOCKET_PATH_BYTES = process.platform === 'linux' ? 107 : 103;
const MAX_PIPE_NAME_CHARS = 256;

const randomSuffix = customAlphabet('0123456789abcdefghijklmnopqrstuvwxyz', 10);
/**
 * Pipe names live in one machine-wide namespace that every user can list and create in, and a
 * client cannot check who serves a pipe: the name must be unguessable before the server binds it
 * (25 base-36 characters ≈ 129 bits).
 */
const pipeSuffix = customAlphabet('0123456789abcdefghijklmnopqrstuvwxyz', 25);

/** Private directories made by `generateSocketName`, removed again when their server closes. */
const generatedDirectories = new Set<string>();

/**
 * A fresh, unique, platform-appropriate local socket name (the Rust crate's
 * `generate_socket_name`): on Unix a path inside a newly created private (0700) directory,
 * short enough for the platform's limit; on Windows a `\\.\pipe\…` name.
 */
export function generateSocketName(): string {
  if (isWindows) return `\\\\.\\pipe\\interprocess-converse-${pipeSuffix()}`;
  const base = privateRuntimeDirectory() ?? os.tmpdir();
  const dir = fs.mkdtempSync(path.join(base, 'ic-')); // mkdtemp creates it 0700
  if (generatedDirectories.size === 0) process.once('exit', removeGeneratedDirectories);
  generatedDirectories.add(dir);
  const name = path.join(dir, 's.sock');
  checkSocketName(name);
  return name;
}

/** $XDG_RUNTIME_DIR, but only when it really is ours and private (it is just an environment value). */
function privateRuntimeDirectory(): string | undefined {
  const dir = process.env.XDG_RUNTIME_DIR;
  if (!dir || !path.isAbsolute(dir)) return undefined;
  try {
    const st = fs.lstatSync(dir);
    if (!st.isDirectory() || (st.mode & 0o077) !== 0) return undefined;
    if (typeof process.getuid === 'function' && st.uid !== process.getuid()) return undefined;
    // Leave room for "/ic-XXXXXX/s.sock" and the private bind path "/ic-XXXXXX/.ic-XXXXXX/s".
    if (Buffer.byteLength(dir) + 30 > MAX_SOCKET_PATH_BYTES) return undefined;
    return dir;
  } catch {
    return undefined;
  }
}

/** Throws `INVALID_NAME` for a name this platform cannot bind or connect to faithfully. */
export function checkSocketName(name: string): void {
  if (typeof name !== 'string' || name.length === 0) {
    throw new ConverseError('INVALID_NAME', 'The socket name must be a non-empty string (a filesystem path, or \\\\.\\pipe\\name on Windows). generateSocketName() makes a good one.');
  }
  if (name.includes('\0')) {
    throw new ConverseError('INVALID_NAME', `The socket name contains a NUL byte. Abstract-namespace names are not supported on Node 20 (it pads them, so no other runtime can reach them); use a path.`);
  }
  if (name.startsWith('@')) {
    const rest = name.slice(1);
    throw new ConverseError(
      'INVALID_NAME',
      `The socket name "${name}" starts with "@", which (in the Rust crate, systemd and ss) means Linux's abstract namespace. That namespace is not supported: Node 20 pads such names with NULs, so no other program could reach them. It is not taken as a file in the current directory either. Use a path, e.g. path.join(process.env.XDG_RUNTIME_DIR, '${rest}'), or "./${name}" if you really mean a file named so.`,
    );
  }
  if (isWindows) {
    if (!/^\\\\[.?]\\pipe\\/i.test(name)) {
      throw new ConverseError('INVALID_NAME', `On Windows the socket name must start with \\\\.\\pipe\\ (got "${name}").`);
    }
    if (name.length > MAX_PIPE_NAME_CHARS) {
      throw new ConverseError('INVALID_NAME', `The pipe name is ${name.length} characters; Windows allows ${MAX_PIPE_NAME_CHARS}.`);
    }
    return;
  }
  const bytes = Buffer.byteLength(name);
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new ConverseError(
      'INVALID_NAME',
      `The socket path is ${bytes} bytes; this platform allows at most ${MAX_SOCKET_PATH_BYTES} (Node would silently truncate it, and two long names could then collide). Use a shorter path, for example from generateSocketName(), or a shorter directory.`,
    );
  }
}

/**
 * At exit, remove the private directories this process generated, if they are empty (a server
 * removes its socket file when it closes; rmdir never removes a non-empty directory). They are
 * kept while the process runs, so a server can close and listen on the same name again.
 */
function removeGeneratedDirectories(): void {
  for (const dir of generatedDirectories) {
    try {
      fs.rmdirSync(dir);
    } catch {
      /* not empty, or already gone */
    }
  }
  generatedDirectories.clear();
}
