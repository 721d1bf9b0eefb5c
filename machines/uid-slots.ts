/**
 * Per-uid connection slots, owned by the supervisor (only its actions take and give back slots).
 *
 * A slot is taken when a connection child is spawned and given back when that child is reaped,
 * so a refused socket (at capacity, denied, draining) never holds one. Plain mutable maps rather
 * than context copies: a spawn must stay O(1) however many connections and users there are.
 */
export class UidSlots {
  private readonly perUid = new Map<number, number>();
  /** The uid each slot-holding connection was counted under, by child (actor) id. */
  private readonly holders = new Map<string, number>();

  constructor(readonly limit: number) {}

  /** Would one more connection of `uid` exceed the limit? A peer whose uid is unknown is not counted. */
  full(uid: number | undefined): boolean {
    return uid !== undefined && (this.perUid.get(uid) ?? 0) >= this.limit;
  }

  take(connectionId: string, uid: number | undefined): void {
    if (uid === undefined) return;
    this.holders.set(connectionId, uid);
    this.perUid.set(uid, (this.perUid.get(uid) ?? 0) + 1);
  }

  /** Give back the slot of a reaped connection (nothing if it held none). */
  give(connectionId: string): void {
    const uid = this.holders.get(connectionId);
    if (uid === undefined) return;
    this.holders.delete(connectionId);
    const left = this.perUid.get(uid)! - 1;
    if (left > 0) this.perUid.set(uid, left);
    else this.perUid.delete(uid);
  }

  /** Live connections counted for `uid`. */
  countOf(uid: number): number {
    return this.perUid.get(uid) ?? 0;
  }

  /** Users holding at least one slot. */
  get users(): number {
    return this.perUid.size;
  }

  /** Connections holding a slot. */
  get held(): number {
    return this.holders.size;
  }
}
