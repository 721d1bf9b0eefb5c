import * as fs from 'node:fs';
import * as net from 'node:net';
import { isMainThread } from 'node:worker_threads';
import { ConverseError } from '../errors.js';
import { checkSocketName, isWindows } from './names.js';

/**
 * Binding a listening socket safely:
 *  - the name is checked against the platform's limits first;
 *  - a socket file left by a dead server is replaced: it must be a socket (not a symlink or a
 *    regular file) owned by us, and a probe connect must be refused; it is renamed aside and its
 *    inode re-checked before it is unlinked, so a concurrent starter's fresh socket is never removed;
 *  - a live server at the name gives `ADDRESS_IN_USE`;
 *  - the socket is created owner-only (umask 0177 around the synchronous bind, so it is never
 *    world-connectable, not even for an instant) unless `socketMode` asks for more;
 *  - on close the file is removed only if it is still the inode we bound.
 */

export interface ListenSocketOptions {
  /** Listen backlog; a large one absorbs connection bursts (Linux caps it at somaxconn). */
  backlog?: number;
  /** File mode of the socket file (Unix). Default 0o600: only the owner can connect. */
  socketMode?: number;
}

export interface BoundListener {
  server: net.Server;
  /** Stop listening and remove our socket file (never someone else's). */
  close(): Promise<void>;
}

const PROBE_TIMEOUT_MS = 500;
const DEFAULT_BACKLOG = 4096;

export async function bindListener(name: string, options: ListenSocketOptions = {}): Promise<BoundListener> {
  checkSocketName(name);
  if (!isWindows) await clearStaleSocket(name);

  const server = net.createServer({ pauseOnConnect: true });
  const mode = options.socketMode ?? 0o600;
  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      server.off('listening', onListening);
      reject(
        error.code === 'EADDRINUSE'
          ? addressInUse(name, 'another server bound it first')
          : new ConverseError(error.code === 'EACCES' ? 'ACCESS_DENIED' : 'INVALID_NAME', `Cannot listen on "${name}": ${error.message}.`, { cause: error }),
      );
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    const backlog = options.backlog ?? DEFAULT_BACKLOG;
    if (!isWindows && isMainThread && typeof process.umask === 'function') {
      // The bind inside listen() is synchronous for a path, so the umask covers exactly it.
      const previous = process.umask(~mode & 0o777);
      try {
        server.listen({ path: name, backlog, exclusive: true });
      } finally {
        process.umask(previous);
      }
    } else {
      server.listen({ path: name, backlog, exclusive: true });
    }
  });

  let inode: number | undefined;
  if (!isWindows) {
    const st = fs.lstatSync(name);
    inode = st.ino;
    // Worker threads cannot change the umask: tighten the mode now (there is a short window,
    // documented; a private directory from generateSocketName() closes it).
    if ((st.mode & 0o777) !== mode) fs.chmodSync(name, mode);
  }

  let closing: Promise<void> | undefined;
  return {
    server,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
      }).then(() => {
        if (isWindows || inode === undefined) return;
        try {
          if (fs.lstatSync(name).ino === inode) fs.unlinkSync(name);
        } catch {
          /* already gone (libuv unlinks its own path on close) */
        }
      })),
  };
}

async function clearStaleSocket(name: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new ConverseError('INVALID_NAME', `Cannot inspect "${name}": ${(error as Error).message}.`, { cause: error });
  }
  if (!st.isSocket()) {
    throw addressInUse(name, 'something that is not a socket is at that path (it was left alone: remove it yourself if it is not needed)');
  }
  if (typeof process.getuid === 'function' && st.uid !== process.getuid()) {
    throw addressInUse(name, `the socket file there belongs to uid ${st.uid}, not to this process (uid ${process.getuid()}); it was left alone`);
  }
  const live = await probe(name);
  if (live) throw addressInUse(name, 'a live server is listening there');

  // Stale. Rename it aside, re-check it is the file we probed, then unlink it. A concurrent
  // starter that already replaced the file keeps its socket (we put it back).
  const aside = `${name}.stale-${process.pid}-${Date.now().toString(36)}`;
  try {
    fs.renameSync(name, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return; // someone else cleared it
    throw error;
  }
  if (fs.lstatSync(aside).ino === st.ino) {
    fs.unlinkSync(aside);
    return;
  }
  try {
    fs.linkSync(aside, name); // put the newcomer's socket back, never clobbering a third file
  } catch {
    /* a third party holds the name now; listen will report ADDRESS_IN_USE */
  }
  fs.unlinkSync(aside);
}

/** Is a server accepting connections at `name`? Only ECONNREFUSED counts as "dead". */
function probe(name: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ path: name });
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

function addressInUse(name: string, why: string): ConverseError {
  return new ConverseError(
    'ADDRESS_IN_USE',
    `Cannot listen on "${name}": ${why}. Stop the other server or choose another name (generateSocketName() gives a fresh one).`,
  );
}
