import { ConverseError, connectionClosedError } from '../errors.js';
import { FrameKind } from '../wire/constants.js';
import type { FrameDecoder } from '../wire/framing.js';
import type { Watched } from '../watchdog.js';
import { PauseReason, type ReadFlow } from './flow.js';
import type { Lifecycle } from './lifecycle.js';
import type { Sender } from './sender.js';
import type { ConnectionStats } from './stats.js';

export interface DeadlineOptions {
  /** A started frame must be complete within this many ms; so long may a peer leave our data unread. */
  frameTimeout: number;
  /** Probe a silent peer every `interval` ms; close if it does not answer within `timeout` ms. */
  keepalive: { interval: number; timeout: number } | undefined;
}

/**
 * While reading from the peer is paused for it (its handlers hold every in-flight slot, or the
 * application is not iterating), a peer that dies goes unseen: its end of the stream is behind
 * bytes we do not read. A PING this often while paused makes a dead peer's stream fail (EPIPE).
 */
const PAUSED_PROBE_MS = 1000;

/**
 * The slow deadlines of one connection, checked by the process-wide watchdog tick: a frame that
 * takes too long to arrive (slowloris), a peer that leaves our data unread, and keepalive. They
 * read counters the hot path keeps anyway, so a message costs nothing extra. (The handshake and
 * close deadlines need a timer's precision, for small timeouts: they are in deadline-queue.ts.)
 */
export class Deadlines implements Watched {
  private watchedFrame = -1;
  private frameSince = 0;
  private lastBytesIn = 0;
  private lastHeard = 0;
  private pingSentAt = -1;
  private lastHandedOver = 0;
  private writeStalledSince = 0;
  private lastProbe = 0;

  constructor(
    private readonly options: DeadlineOptions,
    private readonly decoder: FrameDecoder,
    private readonly sender: Sender,
    private readonly stats: ConnectionStats,
    private readonly flow: ReadFlow,
    /** The connection, told when a deadline fails it (an object, not a closure made per connection). */
    private readonly life: Pick<Lifecycle, 'fail'>,
  ) {
    this.lastHeard = performance.now();
  }

  watchdogTick(now: number): void {
    const decoder = this.decoder;
    // A frame must not take longer than frameTimeout once its first byte arrived (slowloris).
    if (decoder.inFrame) {
      if (this.watchedFrame !== decoder.framesDelivered) {
        this.watchedFrame = decoder.framesDelivered;
        this.frameSince = now;
      } else if (now - this.frameSince > this.options.frameTimeout) {
        this.life.fail(new ConverseError('FRAME_TIMEOUT', `The peer started a frame and did not finish it within ${this.options.frameTimeout} ms (frameTimeout). The connection was closed.`));
        return;
      }
    } else {
      this.watchedFrame = -1;
    }
    // A peer that leaves our data unread: the buffer stays over the limit with no progress.
    const sender = this.sender;
    if (sender.buffered > sender.maxWriteBuffer) {
      const handedOver = sender.bytesHandedOver;
      if (handedOver !== this.lastHandedOver) {
        this.lastHandedOver = handedOver;
        this.writeStalledSince = now;
      } else if (now - this.writeStalledSince > this.options.frameTimeout) {
        this.life.fail(new ConverseError('PEER_NOT_READING', `The peer has not read anything for ${this.options.frameTimeout} ms while ${sender.buffered} bytes wait for it. The connection was closed.`));
        return;
      }
    } else {
      this.writeStalledSince = now;
    }
    if (this.flow.isPausedFor(PauseReason.IN_FLIGHT | PauseReason.READER) && now - this.lastProbe >= PAUSED_PROBE_MS) {
      this.lastProbe = now;
      sender.writeControl(FrameKind.PING);
    }
    const keepalive = this.options.keepalive;
    if (keepalive !== undefined) {
      if (this.stats.bytesIn !== this.lastBytesIn) {
        this.lastBytesIn = this.stats.bytesIn;
        this.lastHeard = now;
        this.pingSentAt = -1;
      } else if (this.pingSentAt < 0) {
        if (now - this.lastHeard >= keepalive.interval) {
          this.pingSentAt = now;
          sender.writeControl(FrameKind.PING);
        }
      } else if (now - this.pingSentAt >= keepalive.timeout) {
        this.life.fail(connectionClosedError(new Error(`the peer did not answer a keepalive probe within ${keepalive.timeout} ms (it may be stopped or hung)`)));
      }
    }
  }
}
