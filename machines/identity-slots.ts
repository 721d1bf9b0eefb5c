/**
 * Per-identity connection slots, owned by the supervisor (only its actions take and give back slots).
 *
 * A peer's identity is what its transport verified about it: the kernel-reported uid on a local
 * socket, the client certificate's SHA-256 fingerprint over TLS (see `peerIdentity` in
 * src/server.ts). Peers with no verified identity (plain TCP, NATS, no peer credentials) are not
 * counted here; `maxConnections` bounds them.
 *
 * A slot is taken when a connection child is spawned and given back when that child is reaped,
 * so a refused socket (at capacity, denied, draining) never holds one. Plain mutable maps rather
 * than context copies: a spawn must stay O(1) however many connections and peers there are.
 */
export type PeerIdentity = number | string;

export class IdentitySlots {
  private readonly perIdentity = new Map<PeerIdentity, number>();
  /** The identity each slot-holding connection was counted under, by child (actor) id. */
  private readonly holders = new Map<string, PeerIdentity>();

  constructor(readonly limit: number) {}

  /** Would one more connection of `identity` exceed the limit? A peer without one is not counted. */
  full(identity: PeerIdentity | undefined): boolean {
    return identity !== undefined && (this.perIdentity.get(identity) ?? 0) >= this.limit;
  }

  take(connectionId: string, identity: PeerIdentity | undefined): void {
    if (identity === undefined) return;
    this.holders.set(connectionId, identity);
    this.perIdentity.set(identity, (this.perIdentity.get(identity) ?? 0) + 1);
  }

  /** Give back the slot of a reaped connection (nothing if it held none). */
  give(connectionId: string): void {
    const identity = this.holders.get(connectionId);
    if (identity === undefined) return;
    this.holders.delete(connectionId);
    const left = this.perIdentity.get(identity)! - 1;
    if (left > 0) this.perIdentity.set(identity, left);
    else this.perIdentity.delete(identity);
  }

  /** Live connections counted for `identity`. */
  countOf(identity: PeerIdentity): number {
    return this.perIdentity.get(identity) ?? 0;
  }

  /** Identities (users, certificates) holding at least one slot. */
  get users(): number {
    return this.perIdentity.size;
  }

  /** Connections holding a slot. */
  get held(): number {
    return this.holders.size;
  }
}
