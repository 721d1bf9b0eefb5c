/**
 * Two connected in-memory Duplex streams, for unit tests of one part of the connection engine
 * (as ws and vscode-jsonrpc test theirs): what is written to one is read from the other. Each
 * side has a small high-water mark, and a side that is not read leaves the other's writes
 * buffered (writableLength grows, 'drain' comes once it is read), as a socket would.
 */
import { Duplex } from 'node:stream';

class End extends Duplex {
  other!: End;
  private pendingCallback: (() => void) | undefined;

  constructor(highWaterMark: number) {
    super({ highWaterMark, allowHalfOpen: false });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    // Handed to the other side's readable buffer; if it is full, hold the callback (backpressure).
    if (this.other.push(chunk)) callback();
    else this.other.pendingCallback = () => callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.other.push(null);
    callback();
  }

  override _read(): void {
    const resume = this.pendingCallback;
    this.pendingCallback = undefined;
    resume?.();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    callback(error);
    // The other end sees the stream go away, as a socket's peer does.
    if (!this.other.destroyed) this.other.destroy();
  }
}

export function duplexPair(highWaterMark = 16 * 1024): [Duplex, Duplex] {
  const a = new End(highWaterMark);
  const b = new End(highWaterMark);
  a.other = b;
  b.other = a;
  return [a, b];
}
