/**
 * The supervisor's intermediate groups and how many live connections each holds, owned by the
 * supervisor (only its actions join and leave groups).
 *
 * Plain mutable maps rather than a context record copied on every accept: finding a group with
 * room and counting a connection in or out stay O(1) however many groups there are (a copy and a
 * scan of the record cost O(groups) per accept).
 */
export class ConnectionGroups {
  /** Live connections per group, by group (actor) id. */
  private readonly live = new Map<string, number>();
  /** Groups with room for one more, oldest first. */
  private readonly roomy = new Set<string>();
  /** Groups made so far: the next one is `group-<made>`. */
  private made = 0;

  constructor(readonly size: number) {}

  /** The group the next connection joins: one with room, else the id of a group still to be made. */
  next(): { id: string; isNew: boolean } {
    for (const id of this.roomy) return { id, isNew: false };
    return { id: `group-${this.made}`, isNew: true };
  }

  /** A connection joins `id` (made now if it is new). */
  join(id: string): void {
    const live = (this.live.get(id) ?? (this.made++, 0)) + 1;
    this.live.set(id, live);
    if (live < this.size) this.roomy.add(id);
    else this.roomy.delete(id);
  }

  /** Live connections in `id` (0 for a group that is gone). */
  countOf(id: string): number {
    return this.live.get(id) ?? 0;
  }

  /** A connection of `id` ended; an emptied group is forgotten (the supervisor stops it). */
  leave(id: string): void {
    const live = this.live.get(id);
    if (live === undefined) return;
    if (live <= 1) {
      this.live.delete(id);
      this.roomy.delete(id);
      return;
    }
    this.live.set(id, live - 1);
    this.roomy.add(id);
  }

  /** Groups alive. */
  get count(): number {
    return this.live.size;
  }
}
