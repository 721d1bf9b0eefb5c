import * as net from 'node:net';
import { ConverseError } from '../errors.js';
import { checkSocketName, isWindows } from './names.js';
import { addressInUse, SocketFile } from './socket-file.js';

/**
 * Binding a listening socket safely:
 *  - the name is checked against the platform's limits first;
 *  - on Unix the socket is bound in a private 0700 directory, given its mode, and only then
 *    linked to the name (./socket-file.ts): it is never reachable with a wider mode, and the
 *    process umask is never touched (other threads' files keep their modes);
 *  - a socket file left by a dead server of ours is replaced (checked in a private place before
 *    it is removed); anything else at the name (a live server, another user's socket, a
 *    regular file, a directory, a symlink) gives `ADDRESS_IN_USE` and is left alone;
 *  - on close the name is removed only if it is still our socket.
 * Windows named pipes have no file: the pipe name is bound as it is.
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

const DEFAULT_BACKLOG = 4096;

export async function bindListener(name: string, options: ListenSocketOptions = {}): Promise<BoundListener> {
  checkSocketName(name);
  const mode = options.socketMode ?? 0o600;
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) {
    throw new ConverseError('INVALID_ARGUMENT', `socketMode must be a file mode from 0 to 0o777 (got ${String(options.socketMode)}).`);
  }
  const backlog = options.backlog ?? DEFAULT_BACKLOG;
  const server = net.createServer({ pauseOnConnect: true });
  if (isWindows) {
    // Never readableAll/writableAll: libuv would grant Everyone GENERIC_WRITE on the pipe, which
    // includes FILE_CREATE_PIPE_INSTANCE (anyone could then serve instances of our pipe). The
    // default DACL leaves other users read access only (README, "Security by platform").
    await listenAt(server, name, name, backlog);
    let closing: Promise<void> | undefined;
    return { server, close: () => (closing ??= new Promise<void>((resolve) => server.close(() => resolve()))) };
  }

  const file = SocketFile.create(name);
  try {
    await listenAt(server, file.bindPath, name, backlog);
    await file.publish(mode);
  } catch (error) {
    await new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
    file.dispose();
    throw error;
  }

  let closing: Promise<void> | undefined;
  return {
    server,
    close: () =>
      (closing ??= (async () => {
        file.unpublish(); // while our socket is open, so its inode is ours alone
        await new Promise<void>((resolve) => server.close(() => resolve()));
        file.dispose();
      })()),
  };
}

function listenAt(server: net.Server, bindPath: string, name: string, backlog: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      server.off('listening', onListening);
      reject(
        error.code === 'EADDRINUSE'
          ? addressInUse(name, 'another server bound it first')
          : new ConverseError(error.code === 'EACCES' || error.code === 'EPERM' ? 'ACCESS_DENIED' : 'INVALID_NAME', `Cannot listen on "${name}": ${error.message}.`, { cause: error }),
      );
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen({ path: bindPath, backlog, exclusive: true });
  });
}
