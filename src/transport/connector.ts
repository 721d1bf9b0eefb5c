import * as net from 'node:net';
import { ConverseError } from '../errors.js';
import { timerDelay } from '../timeouts.js';
import { checkSocketName } from './names.js';

export interface ConnectSocketOptions {
  /** Give up after this many ms. */
  timeout: number;
  /**
   * Wait for a server that is not there yet: retry a missing socket (ENOENT) and a refused one
   * (ECONNREFUSED: a file left behind, nobody listening) until `timeout`, instead of failing at once.
   */
  waitForServer?: boolean;
  signal?: AbortSignal;
}

/**
 * Whether ECONNREFUSED can mean a live server with a full backlog. Linux reports a full backlog
 * as EAGAIN (connect(2)), so there ECONNREFUSED means nobody listens; macOS and the BSDs report
 * it as ECONNREFUSED, indistinguishable from nobody listening, so there it is retried.
 */
const REFUSED_MAY_BE_BUSY = process.platform !== 'linux' && process.platform !== 'win32';

/**
 * Connect a stream socket to a local server. When nothing listens at the name (ENOENT,
 * ECONNREFUSED) it fails at once with CONNECT_FAILED, the errno as `cause`, unless
 * `waitForServer`. A server that is there but busy (a full backlog makes a non-blocking connect
 * fail with EAGAIN instead of waiting; Windows' EBUSY for all pipe instances taken) is retried with
 * a short, jittered, growing backoff until `timeout`.
 */
export function connectSocket(name: string, options: ConnectSocketOptions): Promise<net.Socket> {
  checkSocketName(name);
  const { timeout, waitForServer = false, signal } = options;
  const deadline = performance.now() + timeout;
  let delay = 1;
  return new Promise<net.Socket>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    let socket: net.Socket | undefined;
    let settled = false;
    let lastError: NodeJS.ErrnoException | undefined;
    const finish = (error: ConverseError | undefined, connected?: net.Socket): void => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      clearTimeout(overall);
      signal?.removeEventListener('abort', onAbort);
      if (error) {
        socket?.destroy();
        reject(error);
      } else resolve(connected!);
    };
    const onAbort = (): void => finish(new ConverseError('ABORTED', `Connecting to "${name}" was aborted.`, { cause: signal?.reason }));

    const overall = setTimeout(() => {
      const last = lastError === undefined ? '' : ` (last attempt: ${lastError.code})`;
      finish(
        new ConverseError(
          'CONNECT_FAILED',
          waitForServer
            ? `No server accepted at "${name}" within ${timeout} ms (connectTimeout)${last}. Check that it is running and listens at this name, or raise connectTimeout.`
            : `The server at "${name}" did not accept within ${timeout} ms (connectTimeout)${last}: it is busy or stuck. Retry later, or raise connectTimeout.`,
          lastError === undefined ? undefined : { cause: lastError },
        ),
      );
    }, timerDelay(timeout));
    overall.unref?.();
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });

    const attempt = (): void => {
      if (settled) return;
      const s = net.connect({ path: name });
      socket = s;
      s.once('connect', () => {
        s.removeAllListeners('error');
        finish(undefined, s);
      });
      s.once('error', (error: NodeJS.ErrnoException) => {
        s.destroy();
        if (settled) return;
        lastError = error;
        const busy = error.code === 'EAGAIN' || error.code === 'EBUSY' || (error.code === 'ECONNREFUSED' && REFUSED_MAY_BE_BUSY);
        const absent = error.code === 'ENOENT' || error.code === 'ECONNREFUSED';
        if ((busy || (absent && waitForServer)) && performance.now() + delay < deadline) {
          const jittered = delay * (0.5 + Math.random());
          delay = Math.min(delay * 2, 50);
          timer = setTimeout(attempt, jittered);
          return;
        }
        finish(connectError(name, error, waitForServer));
      });
    };
    attempt();
  });
}

/** The ConverseError for a failed connect attempt, the errno as its `cause`. */
function connectError(name: string, error: NodeJS.ErrnoException, waited: boolean): ConverseError {
  const waitHint = waited ? '' : ' To wait for a server that is starting, pass waitForServer: true (or reconnect).';
  switch (error.code) {
    case 'ENOENT':
      return new ConverseError('CONNECT_FAILED', `No server is listening at "${name}" (ENOENT: the socket does not exist). Start the server first, or check the name.${waitHint}`, { cause: error });
    case 'ECONNREFUSED':
      return new ConverseError('CONNECT_FAILED', `No server is listening at "${name}" (ECONNREFUSED: the socket file is there, but nothing accepts on it; a server that exited may have left it). Start the server first.${waitHint}`, { cause: error });
    case 'EACCES':
    case 'EPERM':
      return new ConverseError('ACCESS_DENIED', `Permission denied connecting to "${name}" (${error.code}): the socket or its directory belongs to another user and is not open to this one.`, { cause: error });
    case 'ENOTSOCK':
      return new ConverseError('CONNECT_FAILED', `"${name}" is not a socket (ENOTSOCK): check the name.`, { cause: error });
    default:
      return new ConverseError('CONNECT_FAILED', `Could not connect to "${name}": ${error.message}.`, { cause: error });
  }
}
