import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { ConverseError } from '../errors.js';
import { checkSocketName } from './names.js';

/**
 * Connect a stream socket to a local server. A Unix socket whose backlog is full makes a
 * non-blocking connect fail at once with EAGAIN instead of waiting (connect(2)); a server being
 * restarted refuses for a moment. Both are retried with a short, jittered, growing backoff until
 * `timeout`. A missing socket file (ENOENT) is retried too while its directory exists: the
 * server may still be starting, or restarting after a clean close removed its file. A name whose
 * directory does not exist fails at once: waiting would not help.
 */
export function connectSocket(name: string, timeout: number, signal?: AbortSignal): Promise<net.Socket> {
  checkSocketName(name);
  const deadline = performance.now() + timeout;
  let delay = 1;
  return new Promise<net.Socket>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    let socket: net.Socket | undefined;
    let settled = false;
    const finish = (error: ConverseError | undefined, connected?: net.Socket): void => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (error) {
        socket?.destroy();
        reject(error);
      } else resolve(connected!);
    };
    const onAbort = (): void => finish(new ConverseError('ABORTED', `Connecting to "${name}" was aborted.`, { cause: signal?.reason }));
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });

    const overall = setTimeout(() => {
      finish(new ConverseError('CONNECT_FAILED', `Could not connect to "${name}" within ${timeout} ms (connectTimeout): the server is not accepting connections. Check that it is running, or raise connectTimeout.`));
    }, timeout);
    overall.unref?.();

    const attempt = (): void => {
      if (settled) return;
      const s = net.connect({ path: name });
      socket = s;
      s.once('connect', () => {
        s.removeAllListeners('error');
        clearTimeout(overall);
        finish(undefined, s);
      });
      s.once('error', (error: NodeJS.ErrnoException) => {
        s.destroy();
        if (settled) return;
        const retriable = error.code === 'EAGAIN' || error.code === 'ECONNREFUSED' || (error.code === 'ENOENT' && directoryExists(name));
        if (retriable && performance.now() + delay < deadline) {
          const jittered = delay * (0.5 + Math.random());
          delay = Math.min(delay * 2, 50);
          timer = setTimeout(attempt, jittered);
          return;
        }
        clearTimeout(overall);
        finish(
          new ConverseError(
            error.code === 'EACCES' ? 'ACCESS_DENIED' : 'CONNECT_FAILED',
            error.code === 'ENOENT'
              ? `No server is listening at "${name}" (the socket file does not exist). Start the server first, or check the name.`
              : error.code === 'EACCES'
                ? `Permission denied connecting to "${name}": the socket belongs to another user and is not open to this one.`
                : `Could not connect to "${name}": ${error.message}.`,
            { cause: error },
          ),
        );
      });
    };
    attempt();
  });
}

/** Whether the directory a Unix socket name lives in exists (never true for a Windows pipe name). */
function directoryExists(name: string): boolean {
  if (process.platform === 'win32') return false;
  try {
    return fs.statSync(path.dirname(name)).isDirectory();
  } catch {
    return false;
  }
}
