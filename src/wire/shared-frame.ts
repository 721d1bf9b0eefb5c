import { encodeFrame } from './codec.js';

/** One frame body encoded at most once per (checksum, limit) combination: a broadcast's TELL. */
export class SharedFrame {
  private readonly frames = new Map<string, Buffer>();
  /** The message type (for the flight recorder). */
  readonly type: string | undefined;
  constructor(private readonly envelope: unknown[]) {
    this.type = (envelope[1] as { type?: string } | undefined)?.type;
  }
  get(checksum: boolean, limit: number): Buffer {
    const key = `${checksum ? 1 : 0}:${limit}`;
    let frame = this.frames.get(key);
    if (frame === undefined) {
      frame = encodeFrame(this.envelope, checksum, limit);
      this.frames.set(key, frame);
    }
    return frame;
  }
}
