import type * as net from 'node:net';
import type { AnyActorRef } from 'xstate';
import type { ConnectionState, ConnectionTransport, TransportCommand, TransportEvent } from '../machines/connection.machine.js';
import { AsyncQueue } from './async-queue.js';
import { ConverseError, ErrorCodes, connectionClosedError, type ErrorCode, type RemoteErrorInfo } from './errors.js';
import { PendingReplies, type PendingAsk } from './pending.js';
import type { PeerCredentials } from './transport/peer-credentials.js';
import { describeIssues, toValidationIssues, type ProtocolDefinition, type StandardSchemaResult, type StandardSchemaV1, type ValidationIssue } from './protocol.js';
import type { AskOptions } from './types.js';
import { FrameKind, HandshakeKind, PROTOCOL_VERSION } from './wire/constants.js';
import { encodeFrame, decodeBody } from './wire/codec.js';
import { FrameDecoder } from './wire/framing.js';
import { HandshakeReader, encodeHandshake, encodeReject, versionMismatch } from './wire/handshake.js';
import { unwatch, watch, type Watched } from './watchdog.js';
import { channels } from './diagnostics.js';

/**
 * The plain-code half of a connection: socket I/O, the handshake bytes, framing, the
 * pending-reply table, handler dispatch and the incoming queue. It is the `transport` the
 * connection machine is given; it reports lifecycle facts to the machine and obeys its
 * commands, and never runs a message through the interpreter.
 */

export interface CoreOptions {
  role: 'client' | 'server';
  handlers: Record<string, ((event: any, ctx: any) => unknown) | undefined> | undefined;
  maxMessageSize: number;
  replyTimeout: number;
  checksum: boolean;
  /** A started frame must be complete within this many ms. */
  frameTimeout: number;
  /** User sends wait while more than this many bytes are queued on the socket. */
  maxWriteBuffer: number;
  /** Probe a silent peer every `interval` ms; close if it does not answer within `timeout` ms. */
  keepalive: { interval: number; timeout: number } | undefined;
  /** The library's own handlers for reserved `$…` message types (introspection). */
  internalHandlers?: Record<string, (event: any, ctx: any) => unknown>;
  /** Name and version of this side's declared protocol, sent in the handshake. */
  protocolMeta?: ProtocolMeta;
  /** Schemas of the messages this side serves: incoming messages are validated against them. */
  schemas?: ProtocolDefinition;
  /** Errors of this side's own making that no asker can be told of (a tell handler threw …). */
  reportError?: (error: ConverseError) => void;
  /** The connection machine spawns a `session` actor: every message is offered to it first. */
  hasSession?: boolean;
}

export interface ProtocolMeta {
  name?: string;
  version?: string | number;
}

/** Why reading from the socket is paused (bit flags: either reason keeps it paused). */
const PAUSED_FOR_READER = 1;
const PAUSED_FOR_WRITES = 2;

/** Incoming messages queued beyond this pause reading from the socket until the reader catches up. */
const INCOMING_HIGH_WATER = 256;
const INCOMING_LOW_WATER = 64;

export interface ConnectionStats {
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Replies that arrived after their ask timed out or was aborted (dropped). */
  lateReplies: number;
  /** Tells of a type without a handler (dropped; there is no one to tell). */
  unhandledTells: number;
}

/** Something in flight that the peer asked: a handler running, or a message awaiting `reply`. */
interface InFlight {
  abort(reason: unknown): void;
  /** The asker cancelled it (or it was aborted): its id may be reused. */
  readonly cancelled: boolean;
}

export class ConnectionCore implements ConnectionTransport, Watched {
  phase: ConnectionState = 'handshake';
  readonly pending: PendingReplies;
  readonly stats: ConnectionStats = { messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0, lateReplies: 0, unhandledTells: 0 };
  /** The connection actor (set when the machine starts this transport). */
  actor: AnyActorRef | undefined;
  /** The public facade handlers receive as `ctx.connection` (set by it). */
  get facade(): unknown {
    return this.facadeObject;
  }
  set facade(facade: unknown) {
    this.facadeObject = facade;
    // A client's facade is made once the handshake is done: publish the open it missed.
    if (this.openUnpublished) {
      this.openUnpublished = false;
      if (channels.connectionOpen.hasSubscribers) channels.connectionOpen.publish({ connection: facade });
    }
  }
  private facadeObject: unknown;
  private openUnpublished = false;
  /** The peer's kernel-reported credentials (read once, at connect/accept). */
  peer: PeerCredentials = {};
  /** Why the connection closed, when not cleanly. */
  closeReason: ConverseError | undefined;
  peerVersion: number | undefined;
  /** The peer's declared protocol name and version, from its handshake. */
  peerProtocol: ProtocolMeta | undefined;
  /** The per-connection session actor, when the side was given a `session` machine. */
  session: AnyActorRef | undefined;
  readonly incoming = new AsyncQueue<IncomingMessageImpl>();

  private readonly inFlight = new Map<number, InFlight>();
  /** Handlers of tells still running (async): their ctx.signal aborts when the connection closes. */
  private readonly runningTells = new Set<HandlerContextImpl>();
  /** Streaming replies this side is producing: credits granted by the asker. */
  private readonly producing = new Map<number, { credit: number; wake: (() => void) | undefined }>();
  private send: ((event: TransportEvent) => void) | undefined;
  private handshakeReader: HandshakeReader | undefined = new HandshakeReader();
  private decoder: FrameDecoder | undefined;
  private checksum = false;
  private sendLimit: number;
  private corked = false;
  private readingPaused = 0;
  /** Senders waiting for the socket's write buffer to fall under maxWriteBuffer. */
  private roomWaiters: Array<{ resolve(): void; reject(error: unknown): void }> = [];
  // Watchdog bookkeeping (see watchdogTick).
  private watchedFrame = -1;
  private frameSince = 0;
  private lastBytesIn = 0;
  private lastHeard = 0;
  private pingSentAt = -1;
  private lastBytesWritten = 0;
  private writeStalledSince = 0;
  private peerSaidGoodbye = false;
  private weSaidGoodbye = false;
  private watchingDrain = false;
  private socketError: Error | undefined;
  private released = false;
  private resolveClosed!: () => void;
  readonly closed: Promise<void> = new Promise((resolve) => (this.resolveClosed = resolve));
  /** Phase listeners (connect() waits for `active`, the server registers connections). */
  onPhase: ((phase: ConnectionState) => void) | undefined;

  constructor(
    readonly socket: net.Socket,
    readonly options: CoreOptions,
  ) {
    this.sendLimit = options.maxMessageSize;
    this.pending = new PendingReplies(
      (id) => this.writeControl(FrameKind.CANCEL, id),
      (id, ask, error) => {
        if (channels.askError.hasSubscribers) channels.askError.publish({ connection: this.facade, id, type: ask.type, error });
      },
    );
    // Listen for errors from the start: an 'error' with no listener would crash the process.
    socket.on('error', (error) => (this.socketError ??= error));
    socket.on('drain', () => this.onDrain());
    this.incoming.onTake = () => {
      if (this.readingPaused & PAUSED_FOR_READER && this.incoming.size <= INCOMING_LOW_WATER) this.resumeReading(PAUSED_FOR_READER);
    };
  }

  /** What inspectors and loggers see of the transport in the actor's context (not the socket). */
  toJSON(): object {
    return { role: this.options.role, phase: this.phase, peer: this.peer, stats: this.stats, pendingAsks: this.pending.size };
  }

  // ── ConnectionTransport: the machine's side ─────────────────────────────────────────────

  attach(send: (event: TransportEvent) => void, actor: AnyActorRef): () => void {
    this.send = send;
    this.actor = actor;
    // The cached phase the hot path checks; snapshots change only on lifecycle events.
    actor.subscribe((snapshot: { value: unknown }) => this.setPhase(snapshot.value as ConnectionState));
    const socket = this.socket;
    socket.on('data', (chunk: Buffer) => {
      try {
        this.onData(chunk);
      } catch (error) {
        // Defence in depth: whatever a peer's bytes provoke, it ends this connection, never the process.
        this.fail(
          error instanceof ConverseError
            ? error
            : new ConverseError('PROTOCOL_ERROR', `Handling the peer's data failed: ${(error as Error)?.message ?? String(error)}. The connection was closed.`, { cause: error }),
        );
      }
    });
    socket.on('close', () => this.onSocketClose());
    if (this.options.role === 'client') {
      this.writeRaw(
        encodeHandshake(HandshakeKind.HELLO, { checksum: this.options.checksum, maxMessageSize: this.options.maxMessageSize, extension: this.handshakeExtension() }),
      );
    }
    socket.resume();
    return () => {
      this.send = undefined;
    };
  }

  command(command: TransportCommand): void {
    switch (command.type) {
      case 'SEND_GOODBYE':
        if (!this.weSaidGoodbye) {
          this.weSaidGoodbye = true;
          this.writeControl(FrameKind.GOODBYE);
        }
        return;
      case 'WATCH_DRAIN':
        this.watchingDrain = true;
        this.checkDrained();
        return;
      case 'END':
        this.socket.end();
        return;
    }
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.send = undefined;
    unwatch(this);
    // Reasons the machine found itself (handshake or close timeout) are in its context.
    this.closeReason ??= (this.actor?.getSnapshot() as { context?: { error?: ConverseError } } | undefined)?.context?.error;
    this.decoder?.stop();
    const reason = this.closeReason ?? connectionClosedError();
    for (const item of this.inFlight.values()) item.abort(reason);
    this.inFlight.clear();
    for (const ctx of this.runningTells) ctx.abort(reason);
    this.runningTells.clear();
    // Streams waiting for credit that will never come: let them see the abort and finish.
    for (const producer of this.producing.values()) producer.wake?.();
    this.pending.rejectAll(reason.code === 'CONNECTION_CLOSED' ? reason : connectionClosedError(reason));
    this.incoming.end();
    for (const waiter of this.roomWaiters.splice(0)) waiter.reject(connectionClosedError(reason));
    if (!this.socket.destroyed) this.socket.destroy();
    this.setPhase('closed');
  }

  // ── Slow deadlines, checked by the process-wide watchdog ─────────────────────────────────

  watchdogTick(now: number): void {
    const decoder = this.decoder;
    if (decoder === undefined || this.released) return;
    // A frame must not take longer than frameTimeout once its first byte arrived (slowloris).
    if (decoder.inFrame) {
      if (this.watchedFrame !== decoder.framesDelivered) {
        this.watchedFrame = decoder.framesDelivered;
        this.frameSince = now;
      } else if (now - this.frameSince > this.options.frameTimeout) {
        this.fail(new ConverseError('FRAME_TIMEOUT', `The peer started a frame and did not finish it within ${this.options.frameTimeout} ms (frameTimeout). The connection was closed.`));
        return;
      }
    } else {
      this.watchedFrame = -1;
    }
    // A peer that leaves our data unread: the buffer stays over the limit with no progress.
    if (this.socket.writableLength > this.options.maxWriteBuffer) {
      if (this.socket.bytesWritten !== this.lastBytesWritten) {
        this.lastBytesWritten = this.socket.bytesWritten;
        this.writeStalledSince = now;
      } else if (now - this.writeStalledSince > this.options.frameTimeout) {
        this.fail(new ConverseError('PEER_NOT_READING', `The peer has not read anything for ${this.options.frameTimeout} ms while ${this.socket.writableLength} bytes wait for it. The connection was closed.`));
        return;
      }
    } else {
      this.writeStalledSince = now;
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
          this.writeControl(FrameKind.PING);
        }
      } else if (now - this.pingSentAt >= keepalive.timeout) {
        this.fail(
          connectionClosedError(new Error(`the peer did not answer a keepalive probe within ${keepalive.timeout} ms (it may be stopped or hung)`)),
        );
      }
    }
  }

  private pauseReading(reason: number): void {
    if (this.readingPaused === 0) {
      this.socket.pause();
      this.decoder?.pause();
    }
    this.readingPaused |= reason;
  }

  private resumeReading(reason: number): void {
    if ((this.readingPaused & reason) === 0) return;
    this.readingPaused &= ~reason;
    if (this.readingPaused === 0 && !this.released) {
      this.decoder?.resume(); // frames held back first, then new bytes
      if (this.readingPaused === 0) this.socket.resume();
    }
  }

  private onDrain(): void {
    this.resumeReading(PAUSED_FOR_WRITES);
    if (this.roomWaiters.length > 0) {
      for (const waiter of this.roomWaiters.splice(0)) waiter.resolve();
    }
  }

  /** Resolves when user sends may go ahead: the write buffer is under maxWriteBuffer. */
  private whenWritable(timeout: number, signal: AbortSignal | undefined, type: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const index = this.roomWaiters.indexOf(waiter);
        if (index >= 0) this.roomWaiters.splice(index, 1);
        reject(
          new ConverseError(
            'TIMEOUT',
            `"${type}" could not be sent within ${timeout} ms: over ${this.options.maxWriteBuffer} bytes (maxWriteBuffer) are waiting for the peer to read them.`,
          ),
        );
      }, timeout);
      const onAbort = (): void => {
        clearTimeout(timer);
        const index = this.roomWaiters.indexOf(waiter);
        if (index >= 0) this.roomWaiters.splice(index, 1);
        reject(abortedError(type, signal!));
      };
      const waiter = {
        resolve: () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        reject: (error: unknown) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          reject(error);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.roomWaiters.push(waiter);
    });
  }

  private get writeBufferFull(): boolean {
    return this.socket.writableLength >= this.options.maxWriteBuffer;
  }

  /** Called from the actor's snapshot subscription. */
  setPhase(phase: ConnectionState): void {
    if (this.phase === phase || this.phase === 'closed') return;
    const previous = this.phase;
    this.phase = phase;
    if (phase === 'active' && previous === 'handshake') {
      if (this.facadeObject === undefined) this.openUnpublished = true;
      else if (channels.connectionOpen.hasSubscribers) channels.connectionOpen.publish({ connection: this.facadeObject });
    }
    if (phase === 'closed') {
      if (previous !== 'handshake' && channels.connectionClose.hasSubscribers) {
        channels.connectionClose.publish({ connection: this.facade, error: this.closeReason });
      }
      this.resolveClosed();
    }
    this.onPhase?.(phase);
  }

  private report(event: TransportEvent): void {
    if (this.send) this.send(event);
    else if (event.type === 'TRANSPORT.FAILED' || event.type === 'TRANSPORT.HANDSHAKE_FAILED') this.socket.destroy();
  }

  private fail(error: ConverseError): void {
    this.closeReason ??= error;
    this.decoder?.stop();
    this.report({ type: 'TRANSPORT.FAILED', error });
  }

  // ── Bytes in ────────────────────────────────────────────────────────────────────────────

  private onData(chunk: Buffer): void {
    this.stats.bytesIn += chunk.length;
    if (this.decoder !== undefined) {
      this.decoder.push(chunk);
      return;
    }
    if (this.handshakeReader === undefined) return; // handshake failed; waiting for close
    let result;
    try {
      result = this.handshakeReader.push(chunk);
    } catch (error) {
      this.failHandshake(error as ConverseError);
      return;
    }
    if (result === undefined) return;
    this.handshakeReader = undefined;
    if (this.options.role === 'server') this.onHello(result.message);
    else this.onWelcome(result.message);
    // Bytes after the handshake in the same chunk are frames (TS narrowed `decoder` above; it may be set now).
    const decoder = this.decoder as FrameDecoder | undefined;
    if (decoder !== undefined && result.rest.length > 0) decoder.push(result.rest);
  }

  private handshakeExtension(): Record<string, unknown> | undefined {
    const meta = this.options.protocolMeta;
    if (meta === undefined || (meta.name === undefined && meta.version === undefined)) return undefined;
    const protocol: Record<string, unknown> = {};
    if (meta.name !== undefined) protocol.name = meta.name;
    if (meta.version !== undefined) protocol.version = meta.version;
    return { protocol };
  }

  /** The peer's declared protocol; an error message when its name differs from ours. */
  private readPeerProtocol(extension: Record<string, unknown>): string | undefined {
    const declared = extension.protocol;
    if (typeof declared === 'object' && declared !== null) {
      const { name, version } = declared as { name?: unknown; version?: unknown };
      this.peerProtocol = {
        name: typeof name === 'string' ? name : undefined,
        version: typeof version === 'string' || typeof version === 'number' ? version : undefined,
      };
    }
    const ours = this.options.protocolMeta?.name;
    const theirs = this.peerProtocol?.name;
    if (ours !== undefined && theirs !== undefined && ours !== theirs) {
      const peer = this.options.role === 'server' ? 'client' : 'server';
      const self = this.options.role;
      const theirVersion = this.peerProtocol?.version !== undefined ? ` version ${this.peerProtocol.version}` : '';
      const ourVersion = this.options.protocolMeta?.version !== undefined ? ` version ${this.options.protocolMeta.version}` : '';
      return `The ${peer} speaks protocol "${theirs}"${theirVersion} and the ${self} "${ours}"${ourVersion}: connect to the right socket, or use the same protocol on both sides`;
    }
    return undefined;
  }

  private onHello(hello: { version: number; kind: number; checksum: boolean; maxMessageSize: number; extension: Record<string, unknown> }): void {
    if (hello.version !== PROTOCOL_VERSION) {
      const error = versionMismatch(hello.version, 'client');
      this.writeRaw(encodeReject('VERSION_MISMATCH', `The server speaks protocol version ${PROTOCOL_VERSION}, the client version ${hello.version}.`, this.options.maxMessageSize));
      this.socket.end();
      this.failHandshake(error, false);
      return;
    }
    if (hello.kind !== HandshakeKind.HELLO) {
      this.failHandshake(new ConverseError('HANDSHAKE_FAILED', `The client's first message was handshake kind ${hello.kind}, not HELLO.`));
      return;
    }
    const mismatch = this.readPeerProtocol(hello.extension);
    if (mismatch !== undefined) {
      this.writeRaw(encodeReject('HANDSHAKE_FAILED', mismatch, this.options.maxMessageSize));
      this.socket.end();
      this.failHandshake(new ConverseError('HANDSHAKE_FAILED', `${mismatch}.`), false);
      return;
    }
    this.checksum = this.options.checksum || hello.checksum;
    this.sendLimit = Math.min(this.options.maxMessageSize, hello.maxMessageSize);
    this.writeRaw(
      encodeHandshake(HandshakeKind.WELCOME, { checksum: this.checksum, maxMessageSize: this.options.maxMessageSize, extension: this.handshakeExtension() }),
    );
    this.startFraming(hello.version, hello.maxMessageSize);
  }

  private onWelcome(reply: { version: number; kind: number; checksum: boolean; maxMessageSize: number; extension: Record<string, unknown> }): void {
    if (reply.kind === HandshakeKind.REJECT) {
      // Without a known reason, a REJECT from another protocol version is a version mismatch
      // (the header's version field is stable across versions so that this can be told).
      const code =
        typeof reply.extension.code === 'string' && Object.hasOwn(ErrorCodes, reply.extension.code)
          ? (reply.extension.code as ErrorCode)
          : reply.version !== PROTOCOL_VERSION
            ? 'VERSION_MISMATCH'
            : 'HANDSHAKE_FAILED';
      const said = typeof reply.extension.message === 'string' ? reply.extension.message.replace(/\.$/, '') : 'no reason given';
      const error =
        code === 'VERSION_MISMATCH'
          ? versionMismatch(reply.version, 'server')
          : new ConverseError(code, `The server refused the connection (${code}): ${said}.${Object.hasOwn(hints, code) ? hints[code] : ''}`);
      this.failHandshake(error, false);
      return;
    }
    if (reply.version !== PROTOCOL_VERSION) {
      this.failHandshake(versionMismatch(reply.version, 'server'));
      return;
    }
    if (reply.kind !== HandshakeKind.WELCOME) {
      this.failHandshake(new ConverseError('HANDSHAKE_FAILED', `The server answered with handshake kind ${reply.kind}, not WELCOME.`));
      return;
    }
    const mismatch = this.readPeerProtocol(reply.extension);
    if (mismatch !== undefined) {
      this.failHandshake(new ConverseError('HANDSHAKE_FAILED', `${mismatch}.`));
      return;
    }
    this.checksum = reply.checksum;
    this.sendLimit = Math.min(this.options.maxMessageSize, reply.maxMessageSize);
    this.startFraming(reply.version, reply.maxMessageSize);
  }

  private startFraming(peerVersion: number, peerMaxMessageSize: number): void {
    this.peerVersion = peerVersion;
    this.decoder = new FrameDecoder(
      this.options.maxMessageSize,
      this.checksum,
      (body) => this.onFrame(body),
      (error) => this.fail(error),
    );
    this.lastHeard = performance.now();
    watch(this);
    this.report({ type: 'TRANSPORT.HANDSHAKE_SUCCEEDED', checksum: this.checksum, peerMaxMessageSize, peerVersion });
  }

  private failHandshake(error: ConverseError, destroy = true): void {
    this.handshakeReader = undefined;
    this.closeReason ??= error;
    this.report({ type: 'TRANSPORT.HANDSHAKE_FAILED', error });
    if (destroy) this.socket.destroy();
  }

  private onSocketClose(): void {
    // Frames already received but held back by backpressure still reach the user.
    if (this.closeReason === undefined) this.decoder?.flush();
    // A clean EOF in the middle of a frame (or of its length prefix) truncated that frame: a
    // protocol violation to report, not an ordinary goodbye.
    const truncated = this.decoder?.inFrame === true;
    this.decoder?.stop();
    if (this.closeReason === undefined) {
      if (truncated && this.socketError === undefined) {
        this.closeReason = protocolError('it closed the connection in the middle of a frame (the frame was truncated)');
      } else if (this.phase === 'handshake') {
        this.closeReason = new ConverseError(
          'HANDSHAKE_FAILED',
          `The ${this.options.role === 'client' ? 'server' : 'client'} closed the connection during the handshake${this.socketError ? ` (${this.socketError.message})` : ''}.`,
          { cause: this.socketError },
        );
      } else if (this.socketError !== undefined || !(this.weSaidGoodbye && this.peerSaidGoodbye)) {
        this.closeReason = connectionClosedError(this.socketError ?? new Error('the peer went away'));
      }
    }
    this.report({ type: 'TRANSPORT.CLOSED', error: this.closeReason });
  }

  private onFrame(body: Buffer): void {
    let message: unknown;
    try {
      message = decodeBody(body);
    } catch (error) {
      this.fail(error as ConverseError);
      return;
    }
    this.stats.messagesIn++;
    if (!Array.isArray(message) || typeof message[0] !== 'number') {
      this.fail(protocolError('a frame body must be a MessagePack array starting with the frame kind'));
      return;
    }
    const kind = message[0];
    if (kind === FrameKind.TELL) {
      this.dispatch(message[1], -1);
      return;
    }
    if (kind === FrameKind.PING) {
      this.writeControl(FrameKind.PONG);
      return;
    }
    if (kind === FrameKind.PONG) return; // any incoming bytes already count as a sign of life
    const id = message[1];
    if (kind !== FrameKind.GOODBYE && (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 0xffffffff)) {
      this.fail(protocolError(`frame kind ${kind} needs a uint32 id`));
      return;
    }
    switch (kind) {
      case FrameKind.REPLY: {
        const ask = this.pending.take(id);
        if (ask === undefined) {
          this.stats.lateReplies++;
          return;
        }
        if (channels.askEnd.hasSubscribers) channels.askEnd.publish({ connection: this.facade, id, type: ask.type });
        ask.resolve(message[2]);
        if (this.watchingDrain) this.checkDrained();
        return;
      }
      case FrameKind.ERROR: {
        const ask = this.pending.take(id);
        if (ask === undefined) {
          this.stats.lateReplies++;
          return;
        }
        const error = errorFromWire(message[2], ask.type);
        if (channels.askError.hasSubscribers) channels.askError.publish({ connection: this.facade, id, type: ask.type, error });
        ask.reject(error);
        if (this.watchingDrain) this.checkDrained();
        return;
      }
      case FrameKind.ASK: {
        // An id still in progress must not be reused (docs/PROTOCOL.md §6.2): the first handler
        // would lose track of its asker (its signal would never abort) and the replies would mix.
        if (this.inFlight.get(id)?.cancelled === false) {
          this.fail(protocolError(`it sent an ASK with id ${id} while its earlier ASK with that id was still in progress`));
          return;
        }
        // An optional fourth element carries ask options: { stream: credit } asks for a streamed reply.
        const askOptions = message[3] as { stream?: unknown } | undefined;
        const credit = typeof askOptions === 'object' && askOptions !== null && typeof askOptions.stream === 'number' ? askOptions.stream : -1;
        this.dispatch(message[2], id, credit);
        return;
      }
      case FrameKind.STREAM_ITEM: {
        const ask = this.pending.get(id);
        if (ask === undefined || ask.item === undefined) {
          this.stats.lateReplies++;
          return;
        }
        this.pending.touch(ask);
        ask.item(message[2]);
        return;
      }
      case FrameKind.STREAM_END: {
        const ask = this.pending.take(id);
        if (ask === undefined) {
          this.stats.lateReplies++;
          return;
        }
        if (channels.askEnd.hasSubscribers) channels.askEnd.publish({ connection: this.facade, id, type: ask.type });
        if (ask.end !== undefined) ask.end();
        else ask.resolve(undefined);
        if (this.watchingDrain) this.checkDrained();
        return;
      }
      case FrameKind.CREDIT: {
        const producer = this.producing.get(id);
        const more = message[2];
        if (producer !== undefined && typeof more === 'number' && more > 0) {
          producer.credit += more;
          producer.wake?.();
        }
        return;
      }
      case FrameKind.CANCEL:
        this.inFlight.get(id)?.abort(new ConverseError('ABORTED', 'The asker cancelled this request (it aborted or timed out).'));
        this.producing.get(id)?.wake?.();
        return;
      case FrameKind.GOODBYE:
        if (!this.peerSaidGoodbye) {
          this.peerSaidGoodbye = true;
          this.report({ type: 'TRANSPORT.PEER_GOODBYE' });
        }
        return;
      default:
        this.fail(protocolError(`unknown frame kind ${kind}`));
    }
  }

  /**
   * An incoming tell (id -1) or ask: validated against the declared protocol (if any), offered to
   * the session (if any), then to its handler or the incoming queue. `credit` ≥ 0 when the asker
   * wants a streamed reply.
   */
  private dispatch(event: unknown, id: number, credit = -1): void {
    if (typeof event !== 'object' || event === null || typeof (event as { type?: unknown }).type !== 'string') {
      this.fail(protocolError('a message must be a map with a string "type"'));
      return;
    }
    const type = (event as { type: string }).type;
    if (this.peerSaidGoodbye && id >= 0) {
      this.writeError(id, 'CONNECTION_CLOSED', `The ask "${type}" was sent after GOODBYE; the connection is closing.`);
      return;
    }
    // Reserved "$…" types (introspection) go to the library's own handlers, if any.
    const internal = this.options.internalHandlers;
    if (internal !== undefined && type.charCodeAt(0) === 0x24 && Object.hasOwn(internal, type)) {
      this.runHandler(internal[type]!, event, id, type, credit);
      return;
    }
    const schemas = this.options.schemas;
    if (schemas !== undefined) {
      const declared = Object.hasOwn(schemas, type) ? schemas[type] : undefined;
      if (declared === undefined) {
        this.refuse(id, type, 'NO_HANDLER', `"${type}" is not a message of the peer's declared protocol (${Object.keys(schemas).join(', ') || 'none'}).`);
        return;
      }
      if (declared.input !== undefined) {
        const { type: _type, ...fields } = event as Record<string, unknown>;
        let result: ReturnType<StandardSchemaV1['~standard']['validate']>;
        try {
          result = declared.input['~standard'].validate(fields);
        } catch (error) {
          // A validator that throws (a bug in it) must not take the connection or the process down.
          this.refuse(id, type, 'INVALID_MESSAGE', `validating "${type}" failed: ${(error as Error)?.message ?? error}`);
          return;
        }
        if (result instanceof Promise) {
          // An async validator: the handler runs once it settles (a later sync message may overtake it).
          result.then(
            (settled) => this.afterValidation(settled, type, id, credit),
            (error) => this.refuse(id, type, 'INVALID_MESSAGE', `validating "${type}" failed: ${(error as Error)?.message ?? error}`),
          );
          return;
        }
        this.afterValidation(result, type, id, credit);
        return;
      }
    }
    this.deliver(event as { type: string }, id, type, credit);
  }

  private afterValidation(result: StandardSchemaResult<unknown>, type: string, id: number, credit: number): void {
    if (result.issues !== undefined) {
      const issues = toValidationIssues(result.issues);
      this.refuse(id, type, 'INVALID_MESSAGE', `"${type}" does not match the declared protocol: ${describeIssues(issues)}.`, issues);
      return;
    }
    const value = result.value;
    // The handler sees what the validator produced (it may have coerced or stripped fields).
    const event = typeof value === 'object' && value !== null ? { ...(value as object), type } : { type };
    this.deliver(event, id, type, credit);
  }

  /** Answer an ask with an error (a tell has no one to answer: it is counted and reported). */
  private refuse(id: number, type: string, code: ErrorCode, message: string, issues?: ValidationIssue[]): void {
    if (id >= 0) {
      this.writeError(id, code, message, undefined, issues);
      return;
    }
    this.stats.unhandledTells++;
    this.reportLocal(new ConverseError(code, `A tell was dropped: ${message}`, issues ? { issues } : undefined));
  }

  private deliver(event: { type: string }, id: number, type: string, credit: number): void {
    const session = this.options.hasSession === true ? (this.session ??= this.findSession()) : undefined;
    if (session !== undefined) {
      const snapshot = session.getSnapshot() as { can(event: unknown): boolean; value: unknown; status: string };
      // `xstate.*` types are XState's own (xstate.stop stops an actor): a peer never sends them to the session.
      if (snapshot.status !== 'active' || type.startsWith('xstate.') || !snapshot.can(event)) {
        this.refuse(
          id,
          type,
          'NOT_ACCEPTED',
          `The session is in state ${JSON.stringify(snapshot.value)} and does not accept "${type}" there.`,
        );
        return;
      }
      let answered = false;
      if (id >= 0) {
        // The session may answer the ask itself, from an action, with answer(event, value).
        Object.defineProperty(event, kAnswer, {
          value: (value: unknown) => {
            if (answered) return;
            answered = true;
            const output = this.declaredOutput(type);
            if (output === undefined) {
              this.writeReply(id, type, value);
              return;
            }
            // A reply from the machine is held to the declared `output` like a handler's.
            const ctx = new HandlerContextImpl(this.facade, true, session);
            this.inFlight.set(id, ctx);
            this.validateReply(id, type, ctx, value, output);
          },
        });
      }
      session.send(event);
      if (answered) return;
      const after = session.getSnapshot() as { status: string; error?: unknown };
      if (after.status === 'error') {
        // The machine threw while taking the event: the asker is told, the connection closes
        // gracefully (the connection machine takes the session's error event), the handler never runs.
        const remote = describeThrown(after.error);
        this.reportLocal(
          new ConverseError('REMOTE_ERROR', `The session machine failed taking "${type}" (${remote.name}: ${remote.message}); the connection is closing.`, { cause: after.error, remote }),
        );
        if (id >= 0) this.writeRemoteError(id, type, after.error);
        return;
      }
    }
    const handlers = this.options.handlers;
    if (handlers !== undefined) {
      const handler = Object.hasOwn(handlers, type) ? handlers[type] : undefined;
      if (typeof handler !== 'function') {
        if (session !== undefined && id < 0) return; // a tell the session took is handled
        this.refuse(id, type, 'NO_HANDLER', `The peer has no handler for "${type}". Check that both sides use the same protocol (message types: ${Object.keys(handlers).join(', ') || 'none'}).`);
        return;
      }
      this.runHandler(handler, event, id, type, credit);
      return;
    }
    const message = new IncomingMessageImpl(this, event, id);
    if (id >= 0) this.inFlight.set(id, message);
    this.incoming.push(message);
    if (this.incoming.size >= INCOMING_HIGH_WATER) this.pauseReading(PAUSED_FOR_READER);
  }

  private findSession(): AnyActorRef | undefined {
    return (this.actor?.getSnapshot() as { children?: Record<string, AnyActorRef> } | undefined)?.children?.session;
  }

  private reportLocal(error: ConverseError): void {
    if (this.options.reportError !== undefined) this.options.reportError(error);
    else process.emitWarning(`interprocess-converse: ${error.message}`, { code: `INTERPROCESS_CONVERSE_${error.code}` });
  }

  /** Call a handler; a synchronous result is answered at once, without a promise. */
  private runHandler(handler: (event: any, ctx: any) => unknown, event: unknown, id: number, type: string, credit = -1): void {
    const ctx = new HandlerContextImpl(this.facade, id >= 0, this.session);
    ctx.streaming = credit >= 0;
    if (credit >= 0) ctx.credit = credit;
    if (id >= 0) this.inFlight.set(id, ctx);
    let result: unknown;
    try {
      result = handler(event, ctx);
    } catch (error) {
      this.finishHandler(id, type, ctx, undefined, error, true);
      return;
    }
    if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
      if (id < 0) this.runningTells.add(ctx);
      (result as PromiseLike<unknown>).then(
        (value) => this.finishHandler(id, type, ctx, value, undefined, false),
        (error) => this.finishHandler(id, type, ctx, undefined, error, true),
      );
    } else {
      this.finishHandler(id, type, ctx, result, undefined, false);
    }
  }

  private finishHandler(id: number, type: string, ctx: HandlerContextImpl, value: unknown, error: unknown, threw: boolean): void {
    if (id < 0) {
      this.runningTells.delete(ctx);
      if (threw) {
        // A tell has no asker to tell: surface it rather than lose it.
        const remote = describeThrown(error);
        this.reportLocal(new ConverseError('REMOTE_ERROR', `The handler for the tell "${type}" threw ${remote.name}: ${remote.message}`, { cause: error, remote }));
      }
      return;
    }
    if (!threw) {
      if (isAsyncIterable(value)) {
        if (ctx.streaming) {
          void this.produceStream(id, type, ctx, value);
          return;
        }
        void value[Symbol.asyncIterator]().return?.();
        threw = true;
        error = new ConverseError('INVALID_ARGUMENT', `The handler for "${type}" streams its reply; the asker must use connection.stream() instead of ask().`);
      } else {
        const output = this.declaredOutput(type);
        if (output !== undefined) {
          this.validateReply(id, type, ctx, value, output);
          return;
        }
      }
    }
    this.settleAsk(id, type, ctx, value, error, threw);
  }

  /** Remove `item`'s in-flight entry; false if it is not (any more) the one under `id`. */
  private finished(id: number, item: InFlight): boolean {
    if (this.inFlight.get(id) !== item) return false;
    this.inFlight.delete(id);
    return true;
  }

  /** Send a handler's async iterable as STREAM_ITEMs, as fast as the asker's credit allows. */
  private async produceStream(id: number, type: string, ctx: HandlerContextImpl, items: AsyncIterable<unknown>): Promise<void> {
    const producer = { credit: ctx.credit, wake: undefined as (() => void) | undefined };
    this.producing.set(id, producer);
    const iterator = items[Symbol.asyncIterator]();
    const output = this.declaredOutput(type);
    let failed: unknown;
    let ended = false;
    try {
      for (;;) {
        if (ctx.cancelled || this.released) break;
        if (producer.credit <= 0) {
          await new Promise<void>((resolve) => (producer.wake = resolve));
          producer.wake = undefined;
          continue;
        }
        const next = await iterator.next();
        if (next.done) {
          ended = true;
          break;
        }
        producer.credit--;
        let value = next.value;
        if (output !== undefined) {
          // Each item must match the declared `output`: a bad one ends the stream on this side.
          const result = await output['~standard'].validate(value);
          if (result.issues !== undefined) {
            const issues = toValidationIssues(result.issues);
            const error = new ConverseError('INVALID_MESSAGE', `The handler for "${type}" streamed an item that does not match the declared protocol: ${describeIssues(issues)}.`, { issues });
            this.reportLocal(error);
            throw error;
          }
          value = result.value;
        }
        this.writeFrame(encodeFrame([FrameKind.STREAM_ITEM, id, value], this.checksum, this.sendLimit));
      }
    } catch (error) {
      failed = error;
    } finally {
      this.producing.delete(id);
      if (!ended) await Promise.resolve(iterator.return?.()).catch(() => {});
      if (this.finished(id, ctx) && !ctx.cancelled) {
        if (failed !== undefined) this.writeRemoteError(id, type, failed);
        else if (ended) this.writeControl(FrameKind.STREAM_END, id);
      }
      if (this.watchingDrain) this.checkDrained();
    }
  }

  /** Check a reply against the declared `output` schema: a bad reply fails on this side. */
  private validateReply(id: number, type: string, ctx: HandlerContextImpl, value: unknown, schema: StandardSchemaV1): void {
    const settle = (result: StandardSchemaResult<unknown>): void => {
      if (result.issues === undefined) {
        this.settleAsk(id, type, ctx, result.value, undefined, false);
        return;
      }
      const issues = toValidationIssues(result.issues);
      const error = new ConverseError('INVALID_MESSAGE', `The handler for "${type}" returned a reply that does not match the declared protocol: ${describeIssues(issues)}.`, { issues });
      this.reportLocal(error);
      this.settleAsk(id, type, ctx, undefined, error, true);
    };
    let result: ReturnType<StandardSchemaV1['~standard']['validate']>;
    try {
      result = schema['~standard'].validate(value);
    } catch (error) {
      this.settleAsk(id, type, ctx, undefined, error, true);
      return;
    }
    if (result instanceof Promise) result.then(settle, (error) => this.settleAsk(id, type, ctx, undefined, error, true));
    else settle(result);
  }

  /** The one way an ask's handler is answered: once, unless the asker cancelled, then maybe drained. */
  private settleAsk(id: number, type: string, ctx: HandlerContextImpl, value: unknown, error: unknown, threw: boolean): void {
    if (!this.finished(id, ctx)) return;
    if (!ctx.cancelled) {
      if (threw) this.writeRemoteError(id, type, error);
      else this.writeReply(id, type, value);
    }
    if (this.watchingDrain) this.checkDrained();
  }

  /** @internal Used by IncomingMessageImpl. */
  answer(message: IncomingMessageImpl, value: unknown, error: unknown, isError: boolean, validated = false): Promise<void> {
    const id = message.id;
    if (id < 0) {
      return Promise.reject(new ConverseError('INVALID_ARGUMENT', `The message "${message.event.type}" was told, not asked: there is no one to reply to.`));
    }
    const output = isError || validated || this.inFlight.get(id) !== message ? undefined : this.declaredOutput(message.event.type);
    if (output !== undefined) {
      // `reply(value)` is held to the declared `output`: a bad reply fails here (reply() rejects
      // with INVALID_MESSAGE) and the asker gets REMOTE_ERROR carrying it.
      const check = (result: StandardSchemaResult<unknown>): Promise<void> => {
        if (result.issues === undefined) return this.answer(message, result.value, undefined, false, true);
        const issues = toValidationIssues(result.issues);
        const invalid = new ConverseError('INVALID_MESSAGE', `The reply to "${message.event.type}" does not match the declared protocol: ${describeIssues(issues)}.`, { issues });
        this.answer(message, undefined, invalid, true).catch(() => {});
        return Promise.reject(invalid);
      };
      const fail = (thrown: unknown): Promise<void> => {
        this.answer(message, undefined, thrown, true).catch(() => {});
        return Promise.reject(thrown);
      };
      try {
        const result = output['~standard'].validate(value);
        return result instanceof Promise ? result.then(check, fail) : check(result);
      } catch (thrown) {
        return fail(thrown);
      }
    }
    if (!this.finished(id, message)) {
      if (this.phase === 'closed') return Promise.reject(connectionClosedError());
      return Promise.reject(new ConverseError('INVALID_ARGUMENT', `The message "${message.event.type}" was already answered (or cancelled by the asker).`));
    }
    if (this.watchingDrain) queueMicrotask(() => this.checkDrained());
    if (this.phase === 'closed' || this.socket.destroyed) return Promise.reject(connectionClosedError());
    if (message.cancelled) return Promise.resolve();
    try {
      if (isError) this.writeRemoteError(id, message.event.type, error);
      else this.writeFrame(encodeFrame([FrameKind.REPLY, id, value], this.checksum, this.sendLimit));
    } catch (encodeError) {
      this.writeRemoteError(id, message.event.type, encodeError);
      return Promise.reject(encodeError);
    }
    return Promise.resolve();
  }

  /** The declared `output` schema of a message type this side serves, if any. */
  private declaredOutput(type: string): StandardSchemaV1 | undefined {
    const schemas = this.options.schemas;
    return schemas !== undefined && Object.hasOwn(schemas, type) ? schemas[type]!.output : undefined;
  }

  private checkDrained(): void {
    if (this.watchingDrain && this.peerSaidGoodbye && this.pending.size === 0 && this.inFlight.size === 0) {
      this.watchingDrain = false;
      this.report({ type: 'TRANSPORT.DRAINED' });
    }
  }

  // ── Bytes out ───────────────────────────────────────────────────────────────────────────

  ask(event: { type: string }, options: AskOptions | undefined): Promise<unknown> {
    if (this.writeBufferFull && this.phase === 'active') {
      // Wait for room rather than grow the socket's buffer without bound; the wait counts
      // against the ask's timeout.
      const timeout = options?.timeout ?? this.options.replyTimeout;
      const started = performance.now();
      return this.whenWritable(timeout, options?.signal, event?.type).then(() =>
        this.startAsk(event, { signal: options?.signal, timeout: Math.max(0, timeout - (performance.now() - started)) }),
      );
    }
    try {
      return this.startAsk(event, options);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** For `send`: resolves when a user send may be written now (see `ask`). */
  waitForRoom(options: AskOptions | undefined, type: string): Promise<void> | undefined {
    if (!this.writeBufferFull || this.phase !== 'active') return undefined;
    return this.whenWritable(options?.timeout ?? this.options.replyTimeout, options?.signal, type);
  }

  /**
   * Write an ask and return its reply promise. Throws (synchronously) when the ask cannot be
   * sent at all: connection not active, bad event, encoding failure, already-aborted signal.
   */
  startAsk(event: { type: string }, options: AskOptions | undefined): Promise<unknown> {
    if (this.phase !== 'active') throw this.unavailable();
    if (typeof event !== 'object' || event === null || typeof event.type !== 'string') {
      throw new ConverseError('INVALID_ARGUMENT', 'A message must be an object with a string "type".');
    }
    const signal = options?.signal;
    if (signal?.aborted) throw abortedError(event.type, signal);
    const id = this.pending.allocateId();
    const frame = encodeFrame([FrameKind.ASK, id, event], this.checksum, this.sendLimit);
    const timeout = options?.timeout ?? this.options.replyTimeout;
    return new Promise((resolve, reject) => {
      const ask: PendingAsk = { resolve, reject, deadline: performance.now() + timeout, timeout, type: event.type, signal: undefined, onAbort: undefined };
      if (signal !== undefined) {
        ask.signal = signal;
        ask.onAbort = () => {
          if (this.pending.take(id) === undefined) return;
          this.writeControl(FrameKind.CANCEL, id);
          const error = abortedError(event.type, signal);
          if (channels.askError.hasSubscribers) channels.askError.publish({ connection: this.facade, id, type: event.type, error });
          reject(error);
          if (this.watchingDrain) this.checkDrained();
        };
        signal.addEventListener('abort', ask.onAbort, { once: true });
      }
      this.pending.add(id, ask);
      this.writeFrame(frame);
      if (channels.askStart.hasSubscribers) channels.askStart.publish({ connection: this.facade, id, event });
    });
  }

  /**
   * Ask for a streamed reply: items arrive as the peer's handler yields them, at most `window`
   * ahead of the consumer (credit-based backpressure). Breaking out of the loop cancels the
   * handler. `timeout` is the longest wait for the next item.
   */
  stream(event: { type: string }, options: (AskOptions & { window?: number }) | undefined): AsyncIterableIterator<unknown> {
    const window = Math.max(1, Math.floor(options?.window ?? 16));
    const items = new AsyncQueue<unknown>();
    let failure: unknown;
    let id = -1;
    let ask: PendingAsk | undefined;
    let consumed = 0;
    /** Items the producer may still send before it needs more credit. */
    let credit = window;
    const start = (): void => {
      if (this.phase !== 'active') throw this.unavailable();
      if (typeof event !== 'object' || event === null || typeof event.type !== 'string') {
        throw new ConverseError('INVALID_ARGUMENT', 'A message must be an object with a string "type".');
      }
      const signal = options?.signal;
      if (signal?.aborted) throw abortedError(event.type, signal);
      id = this.pending.allocateId();
      const frame = encodeFrame([FrameKind.ASK, id, event, { stream: window }], this.checksum, this.sendLimit);
      const timeout = options?.timeout ?? this.options.replyTimeout;
      ask = {
        resolve: (value) => {
          items.push(value); // a plain reply is a stream of one
          items.end();
        },
        reject: (error) => {
          failure = error;
          items.end();
        },
        item: (value) => {
          items.push(value);
          // The window is full: the producer waits for us, so its timeout stops until we grant credit.
          if (--credit <= 0) ask!.deadline = Infinity;
        },
        end: () => items.end(),
        deadline: performance.now() + timeout,
        timeout,
        type: event.type,
        signal: undefined,
        onAbort: undefined,
      };
      if (signal !== undefined) {
        ask.signal = signal;
        ask.onAbort = () => {
          if (this.pending.take(id) === undefined) return;
          this.writeControl(FrameKind.CANCEL, id);
          failure = abortedError(event.type, signal);
          items.end();
        };
        signal.addEventListener('abort', ask.onAbort, { once: true });
      }
      this.pending.add(id, ask);
      this.writeFrame(frame);
    };
    const iterator: AsyncIterableIterator<unknown> = {
      next: async () => {
        if (ask === undefined) start();
        else if (credit > 0) this.pending.touch(ask); // a slow consumer is not a slow producer
        const next = await items.next();
        if (next.done) {
          if (failure !== undefined) throw failure;
          return next;
        }
        // Grant more credit once half the window has been consumed.
        if (++consumed >= Math.ceil(window / 2) && this.pending.get(id) !== undefined) {
          this.writeControl(FrameKind.CREDIT, id, consumed);
          credit += consumed;
          consumed = 0;
          this.pending.touch(ask!); // the producer may go on: its timeout runs again
        }
        return next;
      },
      return: async () => {
        if (id >= 0 && this.pending.take(id) !== undefined) this.writeControl(FrameKind.CANCEL, id);
        items.end();
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }

  tell(event: { type: string }): Promise<void> {
    if (this.phase !== 'active') return Promise.reject(this.unavailable());
    if (this.writeBufferFull) {
      return this.whenWritable(this.options.replyTimeout, undefined, event?.type).then(() => this.tell(event));
    }
    if (typeof event !== 'object' || event === null || typeof event.type !== 'string') {
      return Promise.reject(new ConverseError('INVALID_ARGUMENT', 'A message must be an object with a string "type".'));
    }
    try {
      this.writeFrame(encodeFrame([FrameKind.TELL, event], this.checksum, this.sendLimit));
    } catch (error) {
      return Promise.reject(error);
    }
    return Promise.resolve();
  }

  /** Write an already-encoded TELL body shared by many connections (broadcast). */
  writeShared(frames: SharedFrame): void {
    if (this.phase !== 'active') return;
    this.writeFrame(frames.get(this.checksum, this.sendLimit));
  }

  /** Resolves once the socket has taken everything written so far. */
  flushed(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.socket.destroyed) return reject(connectionClosedError(this.socketError));
      this.socket.write(EMPTY, (error) => (error ? reject(connectionClosedError(error)) : resolve()));
    });
  }

  private writeReply(id: number, type: string, value: unknown): void {
    let frame: Buffer;
    try {
      frame = encodeFrame([FrameKind.REPLY, id, value], this.checksum, this.sendLimit);
    } catch (error) {
      this.writeRemoteError(id, type, error);
      return;
    }
    this.writeFrame(frame);
  }

  private writeRemoteError(id: number, type: string, error: unknown): void {
    const remote = describeThrown(error);
    this.writeError(id, 'REMOTE_ERROR', `The peer's handler for "${type}" failed: ${remote.name}: ${remote.message}`, remote);
  }

  private writeError(id: number, code: ErrorCode, message: string, remote?: RemoteErrorInfo, issues?: ValidationIssue[]): void {
    const payload: Record<string, unknown> = { code, message };
    if (remote !== undefined) payload.remote = remote;
    if (issues !== undefined) payload.issues = issues;
    let frame: Buffer;
    try {
      frame = encodeFrame([FrameKind.ERROR, id, payload], this.checksum, this.sendLimit);
    } catch {
      // The remote error's own text was unencodable or huge: send a plain one.
      frame = encodeFrame([FrameKind.ERROR, id, { code, message: 'the error could not be encoded' }], this.checksum, this.sendLimit);
    }
    this.writeFrame(frame);
  }

  private writeControl(kind: number, id?: number, value?: number): void {
    if (this.socket.destroyed || this.decoder === undefined) return;
    this.writeFrame(encodeFrame(id === undefined ? [kind] : value === undefined ? [kind, id] : [kind, id, value], this.checksum, this.sendLimit));
  }

  private writeRaw(bytes: Buffer): void {
    if (this.socket.destroyed) return;
    this.stats.bytesOut += bytes.length;
    this.socket.write(bytes);
  }

  /**
   * All frames leave through here. The first write in a tick corks the socket and the uncork is
   * scheduled for the end of the tick, so a burst of frames goes out in one writev.
   */
  private writeFrame(frame: Buffer): void {
    const socket = this.socket;
    if (socket.destroyed || socket.writableEnded) return;
    if (!this.corked) {
      this.corked = true;
      socket.cork();
      process.nextTick(uncork, this);
    }
    this.stats.messagesOut++;
    this.stats.bytesOut += frame.length;
    socket.write(frame);
    // Over the limit (replies to a peer that asks faster than it reads): stop reading its asks
    // until it catches up, so it cannot make us buffer without bound.
    if (socket.writableLength > this.options.maxWriteBuffer) this.pauseReading(PAUSED_FOR_WRITES);
  }

  /** @internal */
  uncorkNow(): void {
    this.corked = false;
    this.socket.uncork();
  }

  private unavailable(): ConverseError {
    if (this.phase === 'handshake') {
      return new ConverseError('CONNECTION_CLOSED', 'The connection is still in its handshake; wait for connect() to resolve before sending.');
    }
    return connectionClosedError(this.closeReason);
  }
}

const EMPTY = Buffer.alloc(0);

function uncork(core: ConnectionCore): void {
  core.uncorkNow();
}

/** One TELL, encoded at most once per (checksum, limit) combination, for a broadcast. */
export class SharedFrame {
  private readonly frames = new Map<string, Buffer>();
  constructor(private readonly envelope: unknown[]) {}
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

export class HandlerContextImpl implements InFlight {
  private controller: AbortController | undefined;
  cancelled = false;
  /** The asker wants a streamed reply (it called `stream()`). */
  streaming = false;
  /** @internal Items the asker allowed before its first CREDIT. */
  credit = 0;
  constructor(
    readonly connection: unknown,
    readonly expectsReply: boolean,
    private readonly sessionActor: AnyActorRef | undefined,
  ) {}
  /** The session's current snapshot (when the connection has a session machine). */
  get session(): unknown {
    return this.sessionActor?.getSnapshot();
  }
  /** Created on first use: most handlers never look at it, and an AbortController is not free. */
  get signal(): AbortSignal {
    return (this.controller ??= new AbortController()).signal;
  }
  abort(reason: unknown): void {
    this.cancelled = true;
    (this.controller ??= new AbortController()).abort(reason);
  }
}

export class IncomingMessageImpl implements InFlight {
  private controller: AbortController | undefined;
  cancelled = false;
  constructor(
    private readonly core: ConnectionCore,
    readonly event: { type: string },
    readonly id: number,
  ) {}
  get expectsReply(): boolean {
    return this.id >= 0;
  }
  get signal(): AbortSignal {
    return (this.controller ??= new AbortController()).signal;
  }
  get connection(): unknown {
    return this.core.facade;
  }
  abort(reason: unknown): void {
    this.cancelled = true;
    (this.controller ??= new AbortController()).abort(reason);
  }
  reply(value: unknown): Promise<void> {
    return this.core.answer(this, value, undefined, false);
  }
  fail(error: unknown): Promise<void> {
    return this.core.answer(this, undefined, error, true);
  }
}

function describeThrown(error: unknown): RemoteErrorInfo {
  // Whatever a handler threw is untrusted: a getter that throws, a Symbol name or a Proxy must
  // not escape from here (it would be an uncaught exception in the server, and the asker would
  // wait for its timeout instead of getting REMOTE_ERROR).
  try {
    if (error instanceof Error) {
      const info: RemoteErrorInfo = { name: safeString(error.name), message: safeString(error.message) };
      const code = (error as { code?: unknown }).code;
      if (typeof code === 'string') info.code = code;
      return info;
    }
    return { name: 'Error', message: typeof error === 'string' ? error : safeString(error) };
  } catch {
    return { name: 'Error', message: 'the handler threw a value that could not be described' };
  }
}

function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    return 'a non-Error value';
  }
}

const WIRE_ERROR_CODES = new Set<string>(['NO_HANDLER', 'REMOTE_ERROR', 'CONNECTION_CLOSED', 'INVALID_MESSAGE', 'NOT_ACCEPTED']);

function errorFromWire(payload: unknown, type: string): ConverseError {
  const p = (typeof payload === 'object' && payload !== null ? payload : {}) as { code?: unknown; message?: unknown; remote?: unknown; issues?: unknown };
  const code = typeof p.code === 'string' && WIRE_ERROR_CODES.has(p.code) ? (p.code as ErrorCode) : 'REMOTE_ERROR';
  const message = typeof p.message === 'string' ? p.message : `The peer answered "${type}" with an error.`;
  let remote: RemoteErrorInfo | undefined;
  if (typeof p.remote === 'object' && p.remote !== null) {
    const r = p.remote as { name?: unknown; message?: unknown; code?: unknown };
    remote = { name: typeof r.name === 'string' ? r.name : 'Error', message: typeof r.message === 'string' ? r.message : '' };
    if (typeof r.code === 'string') remote.code = r.code;
  } else if (code === 'REMOTE_ERROR') {
    remote = { name: 'Error', message };
  }
  const issues = Array.isArray(p.issues)
    ? p.issues
        .filter((issue): issue is { message: unknown; path?: unknown } => typeof issue === 'object' && issue !== null)
        .map((issue) => ({
          message: String(issue.message),
          path: Array.isArray(issue.path) ? issue.path.filter((k): k is string | number => typeof k === 'string' || typeof k === 'number') : [],
        }))
    : undefined;
  return new ConverseError(code, message, { remote, issues });
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function';
}

/** Where a session event carries the function that answers its ask (see `answer`). */
export const kAnswer = Symbol.for('interprocess-converse.answer');

function protocolError(what: string): ConverseError {
  return new ConverseError('PROTOCOL_ERROR', `The peer broke the wire protocol: ${what}. The connection was closed; check the peer against docs/PROTOCOL.md.`);
}

function abortedError(type: string, signal: AbortSignal): ConverseError {
  return new ConverseError('ABORTED', `The ask "${type}" was aborted by its AbortSignal; the peer was told to stop.`, { cause: signal.reason });
}

const hints: Partial<Record<ErrorCode, string>> = {
  SERVER_FULL: ' Retry later, or raise the server’s connection limits.',
  ACCESS_DENIED: ' The server does not allow this user or process to connect.',
  CONNECTION_CLOSED: ' The server is shutting down; retry once it is back.',
};
