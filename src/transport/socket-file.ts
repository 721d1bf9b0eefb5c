import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { ConverseError } from '../errors.js';
import { MAX_SOCKET_PATH_BYTES } from './names.js';

/**
 * A Unix socket file published at a public name without ever changing the process umask and
 * without ever unlinking a path that is not provably ours at that moment.
 *
 *  - The socket is bound inside a private 0700 directory made next to the name (same
 *    filesystem), so nobody else can reach it while its mode is set; it is then hard-linked to
 *    the public name. link() never replaces an existing file, so a concurrent starter's socket
 *    is never clobbered. libuv remembers the private path and unlinks *that* on close: never the
 *    public name.
 *  - A stale socket at the name (ours, nobody listening) is moved into the private directory
 *    (nobody else can touch entries there), checked again there — same inode, still refusing
 *    connections — and only then unlinked; otherwise it is put back.
 *  - On close, while our socket is still open (its inode cannot be reused meanwhile), the name
 *    is moved into the private directory only if it is our inode, checked again, and unlinked.
 *
 * Every failure is a ConverseError: ADDRESS_IN_USE for anything at the name we may not replace,
 * ACCESS_DENIED when the directory refuses us, INVALID_NAME otherwise.
 */

const PROBE_TIMEOUT_MS = 500;
/** Rounds of "link, find a stale file, clear it" before giving up (another starter keeps winning). */
const PUBLISH_ATTEMPTS = 5;
/** `<dir>/.ic-XXXXXX/s` is this many bytes longer than `<dir>`. */
export const PRIVATE_BIND_OVERHEAD = '/.ic-XXXXXX/s'.length;

export class SocketFile {
  /** Where the socket is bound (inside the private directory). */
  readonly bindPath: string;
  private identity: { dev: number; ino: number } | undefined;
  private disposed = false;

  private constructor(
    readonly name: string,
    private readonly privateDir: string,
  ) {
    this.bindPath = path.join(privateDir, 's');
  }

  /** Make the private directory next to `name`. */
  static create(name: string): SocketFile {
    const dir = path.dirname(name);
    if (Buffer.byteLength(dir) + PRIVATE_BIND_OVERHEAD > MAX_SOCKET_PATH_BYTES) {
      throw new ConverseError(
        'INVALID_NAME',
        `Cannot listen on "${name}": its directory path is too long. The socket is first bound in a private directory next to it ("${dir}/.ic-XXXXXX/s"), which must fit in ${MAX_SOCKET_PATH_BYTES} bytes; use a shorter directory.`,
      );
    }
    let privateDir: string;
    try {
      privateDir = fs.mkdtempSync(path.join(dir, '.ic-')); // 0700, random name
    } catch (error) {
      throw fileError(name, `cannot create a private directory in ${dir}`, error);
    }
    return new SocketFile(name, privateDir);
  }

  /**
   * The socket is listening at `bindPath`: set its mode, then link it to the public name,
   * clearing a stale socket of ours that is in the way.
   */
  async publish(mode: number): Promise<void> {
    let st: fs.Stats;
    try {
      fs.chmodSync(this.bindPath, mode);
      st = fs.lstatSync(this.bindPath);
    } catch (error) {
      throw fileError(this.name, 'cannot set the socket file’s mode', error);
    }
    for (let attempt = 0; attempt < PUBLISH_ATTEMPTS; attempt++) {
      try {
        fs.linkSync(this.bindPath, this.name);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw fileError(this.name, 'cannot put the socket file in place', error);
        await this.clearStale();
        continue;
      }
      this.identity = { dev: st.dev, ino: st.ino };
      // The name is published now: a failure to drop the private link must not fail listen()
      // (it would leave a published name behind a rejected promise); dispose() removes it anyway.
      try {
        fs.unlinkSync(this.bindPath);
      } catch {
        /* removed with the private directory */
      }
      return;
    }
    throw addressInUse(this.name, 'other servers kept taking the name while this one started');
  }

  /**
   * Remove the public name if it is still our socket. Call while the socket is still open:
   * then no other file can have its inode number.
   */
  unpublish(): void {
    const identity = this.identity;
    if (identity === undefined) return;
    this.identity = undefined;
    try {
      if (!sameFile(fs.lstatSync(this.name), identity)) return; // replaced: someone else's now
      const aside = this.asidePath();
      fs.renameSync(this.name, aside);
      if (sameFile(fs.lstatSync(aside), identity)) fs.unlinkSync(aside);
      else putBack(aside, this.name); // replaced between the two steps
    } catch {
      /* gone already, or the directory refuses us: nothing of ours to remove */
    }
  }

  /** Remove the private directory (after the socket closed: libuv has tried to unlink its path). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    fs.rmSync(this.privateDir, { recursive: true, force: true });
  }

  /** What is at the name after link() said EEXIST: a stale socket of ours is cleared, anything else refused. */
  private async clearStale(): Promise<void> {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(this.name);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return; // cleared meanwhile: link again
      throw fileError(this.name, 'cannot inspect what is at the name', error);
    }
    if (!st.isSocket()) {
      throw addressInUse(this.name, 'something that is not a socket is at that path (it was left alone: remove it yourself if it is not needed)');
    }
    if (typeof process.getuid === 'function' && st.uid !== process.getuid()) {
      throw addressInUse(this.name, `the socket file there belongs to uid ${st.uid}, not to this process (uid ${process.getuid()}); it was left alone`);
    }
    if (await listening(this.name)) throw addressInUse(this.name, 'a live server is listening there');

    // Stale. Move it where nobody else can touch it, and check it there before removing it.
    const aside = this.asidePath();
    try {
      fs.renameSync(this.name, aside);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return; // someone else cleared it
      throw fileError(this.name, 'cannot move the stale socket file aside', error);
    }
    let same = false;
    try {
      same = sameFile(fs.lstatSync(aside), st) && !(await listening(aside));
    } catch (error) {
      putBack(aside, this.name);
      throw fileError(this.name, 'cannot check the stale socket file moved aside', error);
    }
    if (!same) {
      putBack(aside, this.name); // a newcomer's socket: it keeps its name (a third one's is never clobbered)
      return;
    }
    try {
      fs.unlinkSync(aside);
    } catch (error) {
      throw fileError(this.name, 'cannot remove the stale socket file', error);
    }
  }

  /** Where a file is moved to be checked: inside the private directory, as short as the bind path (a probe must fit sun_path). */
  private asidePath(): string {
    return path.join(this.privateDir, 'x');
  }
}

function sameFile(st: fs.Stats, identity: { dev: number; ino: number }): boolean {
  return st.dev === identity.dev && st.ino === identity.ino;
}

/** Give a file moved aside its name back, never replacing whatever took the name meanwhile. */
function putBack(aside: string, name: string): void {
  try {
    fs.linkSync(aside, name);
  } catch {
    /* a third file holds the name now; ours is dropped from view (a three-way race) */
  }
  try {
    fs.unlinkSync(aside);
  } catch {
    /* already gone */
  }
}

/** Is a server accepting connections at `socketPath`? Only ECONNREFUSED and ENOENT count as "no". */
export function listening(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ path: socketPath });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(true); // a server that accepts slowly is still a live server
    }, PROBE_TIMEOUT_MS);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(true);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(error.code !== 'ECONNREFUSED' && error.code !== 'ENOENT');
    });
  });
}

export function addressInUse(name: string, why: string): ConverseError {
  return new ConverseError(
    'ADDRESS_IN_USE',
    `Cannot listen on "${name}": ${why}. Stop the other server or choose another name (generateSocketName() gives a fresh one).`,
  );
}

/** A filesystem failure while listening, as a ConverseError with a stable code (never a raw errno Error). */
export function fileError(name: string, what: string, error: unknown): ConverseError {
  const code = (error as NodeJS.ErrnoException)?.code;
  const message = `Cannot listen on "${name}": ${what} (${(error as Error)?.message ?? String(error)}).`;
  if (code === 'EACCES' || code === 'EPERM') return new ConverseError('ACCESS_DENIED', message, { cause: error });
  if (code === 'EADDRINUSE' || code === 'EEXIST') return new ConverseError('ADDRESS_IN_USE', message, { cause: error });
  return new ConverseError('INVALID_NAME', message, { cause: error });
}
