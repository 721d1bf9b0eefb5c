/**
 * Kernel-reported credentials of the process at the other end of a connected
 * Unix-domain socket.
 *
 * Node has no getsockopt(), so this relies on a tiny optional N-API addon
 * (`native/peercred.c`) whose prebuilt binaries ship inside the package under
 * `prebuilds/<platform>-<arch>[-musl]/peercred.node`. Nothing is compiled at
 * install time: where no binary matches the platform, or it fails to load,
 * {@link peerCredentialsSupported} is `false` and every field reads
 * `undefined`. Callers that authorize peers must then fail closed.
 *
 * Platform-specific behaviour:
 * - Linux (x64 glibc and musl, arm64): SO_PEERCRED; pid, uid and gid as
 *   captured by the kernel at `connect()`.
 * - macOS, BSD: supported by the C source but no binary is shipped (untested).
 * - Windows: always `{}`. Node's pipe sockets expose no pipe HANDLE to native
 *   code, so the client's process id cannot be reached.
 *
 * The pid identifies the process that connected; it can exit and its pid be
 * reused, or it can hand the descriptor to another process. Use it for logs
 * and authorize on uid/gid.
 *
 * Set `INTERPROCESS_CONVERSE_NO_PEERCRED=1` to skip loading the addon.
 *
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { debuglog } from 'node:util';

/**
 * Who the peer is, as something other than the peer vouches for it: on a local socket the kernel
 * (pid, uid, gid); over TLS the peer's certificate, verified against the configured CA (subject,
 * fingerprint). A field is `undefined` where the transport cannot tell.
 */
export interface PeerCredentials {
  readonly pid?: number;
  readonly uid?: number;
  readonly gid?: number;
  /** TLS: the verified peer certificate's subject, e.g. `{ CN: 'worker-1', O: 'Acme' }`. */
  readonly subject?: Readonly<Record<string, string>>;
  /** TLS: SHA-256 fingerprint of the peer certificate, colon-separated hex (`AB:12:…`). */
  readonly fingerprint?: string;
  /** TCP and TLS: the peer's address and port as seen here (`127.0.0.1:53122`); for logs, not for trust. */
  readonly address?: string;
}

interface PeerCredAddon {
  getPeerCred(fd: number): { pid?: number; uid: number; gid: number };
}

const PACKAGE_NAME = 'interprocess-converse';
const ADDON_FILE = 'peercred.node';
const DISABLE_ENV = 'INTERPROCESS_CONVERSE_NO_PEERCRED';

const debug = debuglog('interprocess-converse');

/** `linux-x64`, `linux-x64-musl`, `darwin-arm64`, ...: the prebuilds/ subdirectory for this process. */
function prebuildTag(): string {
  let tag = `${process.platform}-${process.arch}`;
  // A glibc binary may not load under musl (and vice versa). The report header
  // describes the libc this Node process actually runs on, not the system's.
  if (process.platform === 'linux') {
    const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
    if (report?.header && !report.header.glibcVersionRuntime) tag += '-musl';
  }
  return tag;
}

/**
 * The package root: the first ancestor holding `prebuilds/` and our own
 * package.json. Walking up, rather than a fixed `../..`, because this module
 * runs from both src/transport (tests) and dist/src/transport (published).
 */
function findPackageRoot(start: string): string | undefined {
  for (let dir = start; ; ) {
    if (existsSync(join(dir, 'prebuilds'))) {
      try {
        const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown };
        if (pkg.name === PACKAGE_NAME) return dir;
      } catch {
        // no or unreadable package.json here: keep walking
      }
    }
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** The addon, or why there is none (said once at the first listen/connect: see `sayIfUnavailable`). */
function loadAddon(): { addon: PeerCredAddon } | { addon: undefined; reason: string | undefined } {
  // Windows: Node's pipes give native code no HANDLE; no addon is expected, so nothing to say.
  if (process.platform === 'win32') return { addon: undefined, reason: undefined };
  if (/^(1|true|yes)$/i.test(process.env[DISABLE_ENV] ?? '')) {
    debug('peer credentials: disabled by %s', DISABLE_ENV);
    return { addon: undefined, reason: `it was turned off with ${DISABLE_ENV}=${process.env[DISABLE_ENV]}` };
  }
  try {
    const root = findPackageRoot(dirname(fileURLToPath(import.meta.url)));
    if (root === undefined) {
      debug('peer credentials: package root with prebuilds/ not found');
      return { addon: undefined, reason: `no prebuilds/ directory was found next to the library (was it bundled? copy node_modules/${PACKAGE_NAME}/prebuilds alongside)` };
    }
    const file = join(root, 'prebuilds', prebuildTag(), ADDON_FILE);
    if (!existsSync(file)) {
      debug('peer credentials: no prebuilt addon at %s', file);
      return { addon: undefined, reason: `there is no prebuilt addon for ${prebuildTag()} (build one with \`npm run build:native\` in a clone)` };
    }
    const addon = createRequire(import.meta.url)(file) as Partial<PeerCredAddon>;
    if (typeof addon.getPeerCred !== 'function') return { addon: undefined, reason: `${file} is not the peer-credential addon` };
    return { addon: addon as PeerCredAddon };
  } catch (error) {
    // Optional by design: a binary that fails to load (wrong libc, blocked by
    // policy, corrupt file) must not take the library down with it.
    debug('peer credentials: addon failed to load: %o', error);
    return { addon: undefined, reason: `the addon failed to load: ${(error as Error)?.message ?? String(error)}` };
  }
}

const loaded = loadAddon();
const addon = loaded.addon;

/**
 * Why peer credentials are unavailable in this process (`undefined` when they are available, and
 * on Windows, where no mechanism exists).
 */
export const peerCredentialsUnavailableReason: string | undefined = loaded.addon === undefined ? loaded.reason : undefined;

let said = false;

/**
 * Said once per process, at the first `listen` or `connect`, when the addon is missing: without
 * it `peer` is empty, and `allow`, `allowUids` and `expectServerUid` refuse everyone.
 */
export function sayIfPeerCredentialsUnavailable(): void {
  if (said || peerCredentialsUnavailableReason === undefined) return;
  said = true;
  process.emitWarning(
    `interprocess-converse: peer credentials are unavailable (${peerCredentialsUnavailableReason}). connection.peer will be empty, and allow, allowUids and expectServerUid will refuse every peer.`,
    { code: 'INTERPROCESS_CONVERSE_NO_PEERCRED' },
  );
}

/** `true` when a native mechanism is loaded for this platform. */
export const peerCredentialsSupported: boolean = addon !== undefined;

/**
 * Kernel-reported credentials of the process at the other end of a connected
 * Unix socket. Works on both ends: on an accepted socket it names the client,
 * on a client socket it names the server.
 *
 * Never throws: returns `{}` (all fields `undefined`) where the platform or
 * addon cannot tell, or the socket has no file descriptor (not yet connected,
 * destroyed, a Windows pipe, or not a Unix socket). Nothing here is ever
 * filled in from what the peer says about itself.
 */
export function readPeerCredentials(socket: Socket): PeerCredentials {
  if (addon === undefined) return {};
  // `_handle.fd` is private, but has been stable since Node 0.x and is what
  // every fd-level addon (e.g. `sockopt`) uses; -1 on Windows and once closed.
  const fd = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd;
  if (typeof fd !== 'number' || !Number.isInteger(fd) || fd < 0) return {};
  try {
    const { pid, uid, gid } = addon.getPeerCred(fd);
    return pid === undefined ? { uid, gid } : { pid, uid, gid };
  } catch (error) {
    debug('peer credentials: fd %d: %o', fd, error);
    return {};
  }
}
