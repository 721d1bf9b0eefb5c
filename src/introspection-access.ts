import { parseAddress } from './transport/address.js';
import type { PeerCredentials } from './transport/peer-credentials.js';

/**
 * Who may introspect when `introspection` is on and names no `allow` of its own.
 *
 * Introspection shows every connection of the daemon (peers' pid/uid, message types, errors, and
 * with `monitor --messages` the messages themselves), so being let in to talk to the daemon is not
 * enough to read about everyone else who talks to it. By default:
 *  - a peer whose uid the kernel reports: only the daemon's own user and root;
 *  - a peer with a verified TLS certificate: admitted (it chains to the daemon's `ca`);
 *  - a peer with no identity (plain TCP, NATS, a platform without peer credentials): admitted only
 *    on a local socket whose file mode lets no other user connect (the default 0600) or a Windows
 *    pipe (its default ACL admits only the creator's user and administrators); otherwise refused.
 * `introspection: { allow }` replaces this rule.
 */
export function defaultIntrospectionAccess(name: string, socketMode: number | undefined): (peer: PeerCredentials) => boolean {
  const ownUid = typeof process.geteuid === 'function' ? process.geteuid() : undefined;
  const local = parseAddress(name).kind === 'local';
  const privateFile = process.platform === 'win32' || ((socketMode ?? 0o600) & 0o077) === 0;
  return (peer) => {
    if (peer.uid !== undefined) return ownUid === undefined || peer.uid === ownUid || peer.uid === 0;
    if (peer.fingerprint !== undefined) return true;
    return local && privateFile;
  };
}

/** Why the default rule refused a peer, for the ACCESS_DENIED message. */
export const DEFAULT_ACCESS_REFUSAL =
  'without introspection.allow only the daemon’s own user and root (or a verified TLS peer) may introspect; pass introspection: { allow: (peer) => … } to admit others';
