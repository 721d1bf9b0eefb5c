import type { Duplex } from 'node:stream';
import type { FrameDecoder } from '../wire/framing.js';

/**
 * Why reading from the peer is paused. Each reason is a bit: reading resumes only when no
 * reason is left. Pausing the stream alone is not enough (one chunk can hold thousands of small
 * frames), so the frame decoder is paused at the next frame boundary too.
 */
export const PauseReason = {
  /** The application's incoming queue is over its high-water mark. */
  READER: 1,
  /** More than maxWriteBuffer bytes wait for the peer to read them. */
  WRITES: 2,
  /**
   * The handshake is done but the public connection object does not exist yet (a client's is
   * made when connect() resolves): a handler run now would see `ctx.connection` undefined.
   */
  FACADE: 4,
  /** maxInFlight handlers are running for this peer. */
  IN_FLIGHT: 8,
} as const;

export class ReadFlow {
  private paused = 0;
  private decoder: FrameDecoder | undefined;
  private stopped = false;

  constructor(private readonly stream: Duplex) {}

  /** The decoder exists once the handshake is done. */
  useDecoder(decoder: FrameDecoder): void {
    this.decoder = decoder;
  }

  /** The reasons reading is paused for (PauseReason bits; 0: reading). */
  get pausedFor(): number {
    return this.paused;
  }

  isPausedFor(reason: number): boolean {
    return (this.paused & reason) !== 0;
  }

  pause(reason: number): void {
    if (this.paused === 0) {
      this.stream.pause();
      this.decoder?.pause();
    }
    this.paused |= reason;
  }

  resume(reason: number): void {
    if ((this.paused & reason) === 0) return;
    this.paused &= ~reason;
    if (this.paused === 0 && !this.stopped) {
      this.decoder?.resume(); // frames held back first, then new bytes
      // Delivering held-back frames may have paused reading again.
      if (this.paused === 0) this.stream.resume();
    }
  }

  /** The connection is released: nothing resumes reading any more. */
  stop(): void {
    this.stopped = true;
  }
}
