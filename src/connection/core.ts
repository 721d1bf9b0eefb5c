import type { Duplex } from 'node:stream';
import type { AnyActorRef, AnyStateMachine } from 'xstate';
import type { ConnectionContext, ConnectionState, ConnectionTransport, DeadlineKind, TransportCommand, TransportEvent } from '../../machines/connection.machine.js';
import { channels } from '../diagnostics.js';
import { cachedMachineGraph, leafPaths } from '../machine-graph.js';
import { ConverseError, connectionClosedError } from '../errors.js';
import type { ProtocolDefinition } from '../protocol.js';
import type { PeerCredentials } from '../transport/peer-credentials.js';
import type { AskOptions } from '../types.js';
import { unwatch, watch } from '../watchdog.js';
import { decodeBody } from '../wire/codec.js';
import { envelopeProblem } from '../wire/envelope-shape.js';
import { FrameKind } from '../wire/constants.js';
import { FrameDecoder } from '../wire/framing.js';
import { HandshakeReader, type HandshakeMessage } from '../wire/handshake.js';
import type { SharedFrame } from '../wire/shared-frame.js';
import { compactActorOptions, releaseEmptiedQueue } from './actor-shape.js';
import { Deadline, type DeadlineOwner } from './deadline-queue.js';
import { Deadlines } from './deadlines.js';
import { protocolError } from './failures.js';
import { PauseReason, ReadFlow } from './flow.js';
import { InFlightTable } from './in-flight.js';
import { Inbound } from './inbound.js';
import type { Lifecycle } from './lifecycle.js';
import { answerHello, hello, readWelcome, type LocalTerms, type Outcome, type ProtocolMeta } from './negotiate.js';
import { Outbound } from './outbound.js';
import { FlightRecorder, type FlightRecording } from './recorder.js';
import { Responder, type Handler } from './responder.js';
import { Sender } from './sender.js';
import { newStats, type ConnectionStats } from './stats.js';
import { StreamWriter } from './stream-writer.js';
import { describeWork, type WorkInFlight } from './work.js';
import { MessageTracer, stderrSink, type TraceOptions } from '../trace.js';
import { warnUnobserved } from './unobserved.js';
import { activeTracing, readCarrier, type Tracing } from '../otel.js';

/**
 * The plain-code half of a connection, over any byte stream (a local socket today): it wires
 * the parts together, listens to the stream, runs the handshake and routes each frame to the
 * part that owns it. It is the `transport` the connection machine is given: it reports
 * lifecycle facts to the machine and obeys its commands, and never runs a message through the
 * interpreter. Nothing here knows what kind of stream it is: who the peer is comes from the
 * transport that made the stream.
 */

export interface CoreOptions {
  role: 'client' | 'server';
  handlers: Record<string, Handler | undefined> | undefined;
  maxMessageSize: number;
  replyTimeout: number;
  checksum: boolean;
  /** A started frame must be complete within this many ms. */
  frameTimeout: number;
  /** User sends wait while more than this many bytes are queued on the stream. */
  maxWriteBuffer: number;
  /** Handlers running at once for this peer (asks and tells); at the bound reading pauses. */
  maxInFlight: number;
  /** Probe a silent peer every `interval` ms; close if it does not answer within `timeout` ms. */
  keepalive: { interval: number; timeout: number } | undefined;
  /** The library's own handlers for reserved `$…` message types (introspection). */
  internalHandlers?: Record<string, Handler>;
  /** Name and version of this side's declared protocol, sent in the handshake. */
  protocolMeta?: ProtocolMeta;
  /** Schemas of the messages this side serves: incoming messages are validated against them. */
  schemas?: ProtocolDefinition;
  /**
   * Errors of this side's own making that no asker can be told of (a tell handler threw …).
   * Without it they are said as process warnings, once per kind, unless `warnUnobserved` is false.
   * `connection` is the connection's facade (so one options object can serve every connection).
   */
  reportError?: (error: ConverseError, messageType: string | undefined, connection: unknown) => void;
  /** Say unobserved errors as process warnings (once per kind). @default true */
  warnUnobserved?: boolean;
  /** The connection machine spawns a `session` actor: every message is offered to it first. */
  hasSession?: boolean;
  /** Frames the flight recorder keeps (see recorder.ts). @default 64 */
  recordedFrames?: number;
  /** Trace messages (the `trace` option, resolved). */
  trace?: TraceOptions | undefined;
}

/** Where a stream's core is kept, for the stream's shared listeners (see `streamData`). */
const CORE = Symbol('connection core');
type OwnedStream = Duplex & { [CORE]: ConnectionCore };

/**
 * What `attach` returns: nothing to undo of its own. `release`, which the machine calls right
 * after a detach, drops the actor's `send` (a closure per connection here cost ~0.1 KiB).
 */
function detachNothing(): void {}

/** performance.now() of the read being decoded, -1 outside one (frames held back by a pause are delivered later). */
let readAt = -1;

/** What the machine hears when the deadline it armed expires: one frozen event each, shared. */
const DEADLINE_EXPIRED: Record<DeadlineKind, TransportEvent> = {
  HANDSHAKE: Object.freeze({ type: 'DEADLINE.HANDSHAKE' }),
  CLOSE: Object.freeze({ type: 'DEADLINE.CLOSE' }),
};

export class ConnectionCore implements ConnectionTransport, Lifecycle, DeadlineOwner {
  readonly stats: ConnectionStats = newStats();
  /** The last frames and transitions, for when something goes wrong (and for tracing). */
  readonly recorder: FlightRecorder;
  /** The connection actor (set when the machine starts this transport); its snapshot owns the lifecycle facts. */
  actor: AnyActorRef | undefined;
  peerVersion: number | undefined;
  /** The peer's declared protocol name and version, from its handshake. */
  peerProtocol: ProtocolMeta | undefined;
  released = false;
  /** Made on first use (see `closed`). */
  private closedPromise: Promise<void> | undefined;
  private resolveClosed: (() => void) | undefined;
  /** Phase listeners (connect() waits for `active`, the server registers connections). */
  onPhase: ((phase: ConnectionState, core: ConnectionCore) => void) | undefined;
  /**
   * OpenTelemetry, decided once when the connection is made: the API is loaded and a tracer
   * provider registered (otel.ts). Undefined: no span, no trace context, one branch per message.
   */
  readonly tracing: Tracing | undefined = activeTracing();
  /** The peer said in its handshake that it reads trace context on TELLs (docs/PROTOCOL.md §6.9). */
  peerReadsTraceContext = false;

  private readonly flow: ReadFlow;
  private readonly sender: Sender;
  private readonly inFlight: InFlightTable;
  private readonly streams: StreamWriter;
  private readonly inbound: Inbound;
  private readonly outbound: Outbound;
  private deadlines: Deadlines | undefined;
  /**
   * The machine's handshake or close deadline (they never overlap), kept outside XState; made
   * when armed and dropped when disarmed, so an active connection holds none.
   */
  private lifecycleDeadline: Deadline | undefined;
  private armedDeadline: DeadlineKind = 'HANDSHAKE';
  private send: ((event: TransportEvent) => void) | undefined;
  private handshakeReader: HandshakeReader | undefined = new HandshakeReader();
  private decoder: FrameDecoder | undefined;
  private streamError: Error | undefined;
  /** The phase last announced to `onPhase` and diagnostics (to tell a change; not a fact of its own). */
  private announcedPhase: ConnectionState = 'handshake';
  private facadeObject: unknown;
  /** A drain check is scheduled (see `settled`). */
  private drainCheckQueued = false;
  private openUnpublished = false;

  constructor(
    /** The byte stream to the peer: any Duplex (a net.Socket for a local socket). */
    readonly socket: Duplex,
    readonly options: CoreOptions,
    /** Who the peer is, as the transport that made the stream knows it (never as the peer claims). */
    readonly peer: PeerCredentials = {},
  ) {
    (socket as OwnedStream)[CORE] = this;
    this.flow = new ReadFlow(socket);
    this.sender = new Sender(socket, this.stats, options.maxWriteBuffer, options.maxMessageSize, this.flow);
    this.recorder = this.sender.recorder = new FlightRecorder(options.recordedFrames);
    this.recorder.transition('handshake');
    if (options.trace !== undefined) this.traceMessages(options.trace.level === 'verbose', options.trace.redact).sinks.add(options.trace.log ?? stderrSink);
    this.inFlight = new InFlightTable(options.maxInFlight, this.flow, this);
    this.streams = new StreamWriter(this.sender, this, this.inFlight);
    const responder = new Responder(this.sender, this, this.inFlight, this.streams, options.schemas, this.tracing);
    this.inbound = new Inbound(
      options, // read live: introspect() adds internal handlers to a client's options
      this.sender,
      this,
      this.flow,
      this.inFlight,
      responder,
      this.stats,
    );
    this.outbound = new Outbound(this.sender, this, this.stats, options.replyTimeout, this.tracing);
    // Listen for errors from the start: an 'error' with no listener would crash the process.
    socket.on('error', ConnectionCore.streamErrored);
  }

  /**
   * Settles (never rejects) once the connection is closed. Made when first asked for: a promise
   * and its resolver held by every idle connection cost ~0.15 KiB.
   */
  get closed(): Promise<void> {
    return (this.closedPromise ??= this.announcedPhase === 'closed' ? Promise.resolve() : new Promise<void>((resolve) => (this.resolveClosed = resolve)));
  }

  // ── Lifecycle facts: read from the machine's snapshot, never copied ───────────────────

  private get context(): ConnectionContext | undefined {
    return (this.actor?.getSnapshot() as { context?: ConnectionContext } | undefined)?.context;
  }

  /** The connection machine's state (`closed` once the actor is released). */
  get phase(): ConnectionState {
    if (this.released) return 'closed';
    const snapshot = this.actor?.getSnapshot() as { value: ConnectionState } | undefined;
    return snapshot === undefined ? 'handshake' : snapshot.value;
  }

  /** Why the connection closed, when not cleanly. */
  get closeReason(): ConverseError | undefined {
    return this.context?.error;
  }

  get peerSaidGoodbye(): boolean {
    return this.context?.peerSaidGoodbye === true;
  }

  get sessionChild(): AnyActorRef | undefined {
    return (this.actor?.getSnapshot() as { children?: Record<string, AnyActorRef> } | undefined)?.children?.session;
  }

  get awaitingReplies(): boolean {
    return this.outbound.pending.size > 0;
  }

  /** The public facade handlers receive as `ctx.connection` (set by it). */
  get facade(): unknown {
    return this.facadeObject;
  }
  set facade(facade: unknown) {
    this.facadeObject = facade;
    this.flow.resume(PauseReason.FACADE);
    // A client's facade is made once the handshake is done: publish the open it missed.
    if (this.openUnpublished) {
      this.openUnpublished = false;
      if (channels.connectionOpen.hasSubscribers) channels.connectionOpen.publish({ connection: facade });
    }
  }

  /** The pending-reply table: asks this side sent and still waits on. */
  get pending(): Outbound['pending'] {
    return this.outbound.pending;
  }

  /** Incoming messages for an application that iterates the connection. */
  get incoming(): Inbound['incoming'] {
    return this.inbound.incoming;
  }

  /** The application iterates this connection (see Inbound.attachReader). */
  attachReader(): void {
    this.inbound.attachReader();
  }

  /** The per-connection session actor, when the side was given a `session` machine. */
  get session(): AnyActorRef | undefined {
    return this.inbound.session;
  }

  /** The flight recorder's recording of this connection so far. */
  recording(): FlightRecording {
    const facade = this.facadeObject as { id?: string } | undefined;
    const machine = this.sessionMachine();
    const session =
      machine === undefined
        ? undefined
        : {
            machine: machine.id,
            graph: cachedMachineGraph(machine),
            transitions: this.recorder.sessionTransitions().map((t) => ({ at: t.at, ...(t.event === undefined ? {} : { event: t.event }), state: leafPaths(t.value) })),
          };
    return this.recorder.recording({ connection: facade?.id, role: this.options.role, peer: this.peer, reason: this.closeReason, session });
  }

  /** The session actor as it was spawned (kept after it stops, for the recording). */
  private sessionActor: AnyActorRef | undefined;

  /** The session's machine definition, when the connection has a session. */
  sessionMachine(): AnyStateMachine | undefined {
    const logic = (this.sessionActor as { logic?: unknown } | undefined)?.logic as Partial<AnyStateMachine> | undefined;
    return logic !== undefined && typeof logic === 'object' && logic.root !== undefined ? (logic as AnyStateMachine) : undefined;
  }

  /** The session's recorded transitions (see recorder.ts). */
  sessionTransitions(): Array<{ at: number; event: string | undefined; value: unknown }> {
    return this.recorder.sessionTransitions();
  }

  /**
   * Record the session machine's transitions in the flight recorder: its state value is compared
   * by reference on each of its snapshots (XState keeps the object when the state stays), and a
   * change is written with the message type being offered, if a message moved it.
   */
  private watchSession(): void {
    if (this.sessionActor !== undefined) return;
    const session = (this.actor?.getSnapshot() as { children?: Record<string, AnyActorRef> } | undefined)?.children?.session;
    if (session === undefined) return;
    this.sessionActor = session;
    let last = (session.getSnapshot() as { value?: unknown }).value;
    this.recorder.sessionState(undefined, last);
    session.subscribe({
      next: (snapshot: { value?: unknown }) => {
        if (snapshot.value === last) return;
        last = snapshot.value;
        this.recorder.sessionState(this.inbound.offering, last);
      },
      // The connection machine handles a failed session; an observer without this would make XState report it as unhandled.
      error: () => undefined,
    });
  }

  /** The connection's message tracer, made (at `messages` level unless it exists) on first use. */
  traceMessages(verbose = false, redact?: TraceOptions['redact']): MessageTracer {
    return (this.recorder.tracer ??= new MessageTracer(() => (this.facadeObject as { id?: string } | undefined)?.id ?? '', verbose, redact));
  }

  /** Work in flight now (see work.ts). */
  work(): WorkInFlight {
    return describeWork(this.inFlight, this.outbound.pending, this.streams, this.flow.pausedFor);
  }

  /** Stop giving records to `sink`; a tracer left with no sink is removed (untraced costs one branch). */
  untrace(sink: (record: never) => void): void {
    const tracer = this.recorder.tracer;
    if (tracer === undefined) return;
    tracer.sinks.delete(sink as never);
    if (tracer.sinks.size === 0) this.recorder.tracer = undefined;
  }

  /** What inspectors and loggers see of the transport in the actor's context (not the stream). */
  toJSON(): object {
    return { role: this.options.role, phase: this.phase, peer: this.peer, stats: this.stats, pendingAsks: this.pending.size };
  }

  // ── Sending: the facade's calls ─────────────────────────────────────────────────────────

  ask(event: { type: string }, options: AskOptions | undefined): Promise<unknown> {
    this.inbound.ownAskStarting();
    return this.outbound.ask(event, options);
  }

  waitForRoom(options: AskOptions | undefined, type: string): Promise<AskOptions> | undefined {
    return this.outbound.waitForRoom(options, type);
  }

  startAsk(event: { type: string }, options: AskOptions | undefined): Promise<unknown> {
    this.inbound.ownAskStarting();
    return this.outbound.startAsk(event, options);
  }

  stream(event: { type: string }, options: (AskOptions & { window?: number }) | undefined): AsyncIterableIterator<unknown> {
    this.inbound.ownAskStarting();
    return this.outbound.stream(event, options);
  }

  tell(event: { type: string }): Promise<void> {
    return this.outbound.tell(event);
  }

  /**
   * Write an already-encoded TELL shared by many connections (broadcast). False when it was
   * skipped: the peer has not read what we sent before (the write budget is used up), and a
   * broadcast never queues bytes beyond it for a slow reader.
   */
  writeShared(frames: SharedFrame): boolean {
    if (this.phase !== 'active') return true;
    if (this.sender.full) {
      this.stats.broadcastsSkipped++;
      return false;
    }
    this.sender.writeShared(frames);
    return true;
  }

  /** Resolves once the stream has taken everything written so far. */
  flushed(): Promise<void> {
    return this.sender.flushed(this.streamError);
  }

  // ── ConnectionTransport: the machine's side ─────────────────────────────────────────────

  attach(send: (event: TransportEvent) => void, actor: AnyActorRef): () => void {
    this.send = send;
    this.actor = actor;
    const socket = this.socket;
    socket.on('data', ConnectionCore.streamData);
    socket.on('close', ConnectionCore.streamClosed);
    if (this.options.role === 'client') this.sender.writeRaw(hello(this.terms()));
    socket.resume();
    return detachNothing;
  }

  /** The stream's 'data' listener (through `streamData`). */
  private receive(chunk: Buffer): void {
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
  }

  /** The stream's 'error' listener (through `streamErrored`): the first error is why it closes. */
  private streamFailed(error: Error): void {
    this.streamError ??= error;
  }

  // The stream's listeners: one function each for every connection, which finds the connection's
  // core on the stream (a closure per connection and event cost ~0.1 KiB each).
  private static streamData(this: Duplex, chunk: Buffer): void {
    (this as OwnedStream)[CORE].receive(chunk);
  }

  private static streamClosed(this: Duplex): void {
    (this as OwnedStream)[CORE].onStreamClose();
  }

  private static streamErrored(this: Duplex, error: Error): void {
    (this as OwnedStream)[CORE].streamFailed(error);
  }

  /** The actor's new state (its snapshots change only on lifecycle events). */
  stateChanged(state: ConnectionState): void {
    const actor = this.actor;
    if (actor !== undefined) {
      // The first snapshot comes once the actor's start has run (again only for an event that changes nothing).
      if (state === 'handshake') compactActorOptions(actor);
      releaseEmptiedQueue(actor);
    }
    this.announce(state);
  }

  command(command: TransportCommand): void {
    switch (command.type) {
      case 'SEND_GOODBYE':
        this.sender.writeControl(FrameKind.GOODBYE);
        return;
      case 'WATCH_DRAIN':
        // Sent from inside the machine's transition: its snapshot is not the new one yet, so
        // the check waits for the deferred turn instead of reading it now.
        this.checkDrainLater();
        return;
      case 'END':
        this.sender.end(); // after the frames still waiting in its batch
        return;
      case 'ARM_DEADLINE':
        this.disarmDeadline();
        if (command.timeout === Infinity) return; // no deadline at all
        this.armedDeadline = command.deadline;
        (this.lifecycleDeadline = new Deadline(this)).arm(command.timeout);
        return;
      case 'DISARM_DEADLINE':
        this.disarmDeadline();
        return;
    }
  }

  /** The deadline the machine armed expired (it is unlinked already, so it fires once). */
  deadlineExpired(): void {
    this.lifecycleDeadline = undefined;
    this.send?.(DEADLINE_EXPIRED[this.armedDeadline]);
  }

  private disarmDeadline(): void {
    this.lifecycleDeadline?.disarm();
    this.lifecycleDeadline = undefined;
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.send = undefined;
    // (A parent's stopChild runs no exit actions: the machine's DISARM_DEADLINE may never come.)
    this.disarmDeadline();
    if (this.deadlines !== undefined) unwatch(this.deadlines);
    this.decoder?.stop();
    this.flow.stop();
    const reason = this.closeReason ?? connectionClosedError();
    this.inFlight.abortAll(reason);
    this.streams.release();
    this.outbound.release(reason.code === 'CONNECTION_CLOSED' ? reason : connectionClosedError(reason));
    this.inbound.end();
    this.sender.release(reason);
    if (!this.socket.destroyed) this.socket.destroy();
    this.announce('closed');
    // (A reason found only now, after the actor reached `closed` on its own, still gets its recording.)
    const found = this.closeReason;
    if (found !== undefined) found.recording ??= this.recording();
  }

  /** Tell `onPhase` and diagnostics of a new phase (from the actor's snapshot subscription). */
  private announce(phase: ConnectionState): void {
    const previous = this.announcedPhase;
    if (previous === phase || previous === 'closed') return;
    this.announcedPhase = phase;
    this.recorder.transition(phase);
    if (phase === 'active') this.watchSession();
    if (phase === 'active' && previous === 'handshake') {
      if (this.facadeObject === undefined) this.openUnpublished = true;
      else if (channels.connectionOpen.hasSubscribers) channels.connectionOpen.publish({ connection: this.facadeObject });
    }
    if (phase === 'closed') {
      // What happened just before a failure travels with the error (`connectionError`, `closeReason`).
      if (this.closeReason !== undefined) this.closeReason.recording ??= this.recording();
      if (previous !== 'handshake' && channels.connectionClose.hasSubscribers) {
        channels.connectionClose.publish({ connection: this.facade, error: this.closeReason });
      }
      this.resolveClosed?.();
    }
    this.onPhase?.(phase, this);
  }

  // ── Lifecycle: what the parts report ────────────────────────────────────────────────────

  /**
   * The one signal that something which may hold a close open has finished (an ask of ours
   * settled, an ask of the peer's answered). Closing completes once the peer said goodbye and
   * nothing of either side is in flight.
   */
  settled(): void {
    if (this.drainCheckQueued || !this.drainable()) return;
    this.checkDrainLater();
  }

  private checkDrainLater(): void {
    if (this.drainCheckQueued) return;
    // Decided once the current read is handled, not in the middle of it: an ASK that came in the
    // same read as the peer's GOODBYE is still answered (CONNECTION_CLOSED, §7.1 step 3) before
    // this side ends its direction.
    this.drainCheckQueued = true;
    setImmediate(() => {
      this.drainCheckQueued = false;
      if (!this.released && this.drainable()) this.report({ type: 'TRANSPORT.DRAINED' });
    });
  }

  /** Closing, the peer said goodbye, and nothing of either side is in flight. */
  private drainable(): boolean {
    if (this.pending.size !== 0 || this.inFlight.size !== 0) return false;
    const snapshot = this.actor?.getSnapshot() as { value: ConnectionState; context: ConnectionContext } | undefined;
    return snapshot?.value === 'closing' && snapshot.context.peerSaidGoodbye;
  }

  fail(error: ConverseError): void {
    this.decoder?.stop();
    this.report({ type: 'TRANSPORT.FAILED', error });
  }

  reportLocal(error: ConverseError, messageType?: string): void {
    if (this.options.reportError !== undefined) this.options.reportError(error, messageType, this.facadeObject);
    else if (this.options.warnUnobserved !== false) warnUnobserved(error, messageType, 'pass warnUnobservedErrors: false to connect() to silence these');
  }

  private report(event: TransportEvent): void {
    if (this.send) this.send(event);
    else if (event.type === 'TRANSPORT.FAILED' || event.type === 'TRANSPORT.HANDSHAKE_FAILED') this.socket.destroy();
  }

  // ── Bytes in ────────────────────────────────────────────────────────────────────────────

  private onData(chunk: Buffer): void {
    this.stats.bytesIn += chunk.length;
    if (this.decoder !== undefined) {
      // The frames of one read are recorded at its time (one clock read per chunk, not per frame).
      readAt = performance.now();
      try {
        this.decoder.push(chunk);
      } finally {
        readAt = -1;
      }
      return;
    }
    if (this.handshakeReader === undefined) return; // handshake failed; waiting for close
    let result;
    try {
      result = this.handshakeReader.push(chunk);
    } catch (error) {
      this.failHandshake(error as ConverseError, true);
      return;
    }
    if (result === undefined) return;
    this.handshakeReader = undefined;
    this.onHandshake(result.message);
    // Bytes after the handshake in the same chunk are frames (TS narrowed `decoder` above; it may be set now).
    const decoder = this.decoder as FrameDecoder | undefined;
    if (decoder !== undefined && result.rest.length > 0) decoder.push(result.rest);
  }

  private terms(): LocalTerms {
    const { role, checksum, maxMessageSize, protocolMeta } = this.options;
    return { role, checksum, maxMessageSize, protocolMeta, readsTraceContext: this.tracing !== undefined };
  }

  private onHandshake(message: HandshakeMessage): void {
    const outcome: Outcome = this.options.role === 'server' ? answerHello(message, this.terms()) : readWelcome(message, this.terms());
    if (!outcome.ok) {
      if (outcome.peerProtocol !== undefined) this.peerProtocol = outcome.peerProtocol;
      if (outcome.answer !== undefined) {
        this.sender.writeRaw(outcome.answer);
        this.socket.end();
      }
      this.failHandshake(outcome.error, outcome.destroy);
      return;
    }
    const agreement = outcome.agreement;
    this.peerProtocol = agreement.peerProtocol;
    this.sender.checksum = agreement.checksum;
    this.sender.sendLimit = agreement.sendLimit;
    if (outcome.answer !== undefined) this.sender.writeRaw(outcome.answer);
    this.peerVersion = agreement.peerVersion;
    this.peerReadsTraceContext = agreement.peerReadsTraceContext;
    const decoder = new FrameDecoder(
      this.options.maxMessageSize,
      agreement.checksum,
      this.onFrame, // called with `this` the core (the last argument): no closures per connection
      this.fail,
      true, // frames as ranges of the read chunk: no Buffer per frame
      this,
    );
    this.decoder = decoder;
    this.flow.useDecoder(decoder);
    // Frames may follow the WELCOME in the same read; they wait until handlers can be given
    // their connection.
    if (this.facadeObject === undefined) this.flow.pause(PauseReason.FACADE);
    this.sender.framing = true;
    this.deadlines = new Deadlines(this.options, decoder, this.sender, this.stats, this.flow, this);
    watch(this.deadlines);
    this.report({ type: 'TRANSPORT.HANDSHAKE_SUCCEEDED', checksum: agreement.checksum, peerMaxMessageSize: agreement.peerMaxMessageSize, peerVersion: agreement.peerVersion });
  }

  private failHandshake(error: ConverseError, destroy: boolean): void {
    this.handshakeReader = undefined;
    this.report({ type: 'TRANSPORT.HANDSHAKE_FAILED', error });
    if (destroy) this.socket.destroy();
  }

  private onStreamClose(): void {
    // Frames already received but held back by backpressure still reach the user.
    if (this.closeReason === undefined) this.decoder?.flush();
    // A clean EOF in the middle of a frame (or of its length prefix) truncated that frame: a
    // protocol violation to report, not an ordinary goodbye.
    const truncated = this.decoder?.inFrame === true;
    this.decoder?.stop();
    let reason: ConverseError | undefined;
    if (this.closeReason === undefined) {
      const context = this.context;
      if (truncated && this.streamError === undefined) {
        reason = protocolError('it closed the connection in the middle of a frame (the frame was truncated)');
      } else if (this.phase === 'handshake') {
        reason = new ConverseError(
          'HANDSHAKE_FAILED',
          `The ${this.options.role === 'client' ? 'server' : 'client'} closed the connection during the handshake${this.streamError ? ` (${this.streamError.message})` : ''}.`,
          { cause: this.streamError },
        );
      } else if (this.streamError !== undefined || !(context?.saidGoodbye === true && context.peerSaidGoodbye)) {
        reason = connectionClosedError(this.streamError ?? new Error('the peer went away'));
      }
    }
    this.report({ type: 'TRANSPORT.CLOSED', error: reason });
  }

  /** The frame router: each frame (bytes `start` … `end` of `buf`) goes to the part that owns its kind. */
  private onFrame(buf: Buffer, start: number, end: number): void {
    let decoded: unknown;
    let undecodable: unknown;
    try {
      decoded = decodeBody(buf, start, end);
    } catch (error) {
      undecodable = error;
    }
    this.recorder.frameIn(end - start, decoded, readAt >= 0 ? readAt : performance.now());
    if (undecodable !== undefined) {
      this.fail(undecodable as ConverseError);
      return;
    }
    this.stats.messagesIn++;
    // A TELL may carry trace context as a third element only if this side said it reads it.
    const problem = envelopeProblem(buf, decoded, this.tracing !== undefined, start);
    if (problem !== undefined) {
      this.fail(protocolError(problem));
      return;
    }
    const message = decoded as unknown[];
    const kind = message[0] as number;
    if (kind === FrameKind.TELL) {
      this.inbound.dispatch(message[1], -1, -1, message.length === 3 ? readCarrier(message[2]) : undefined);
      return;
    }
    if (kind === FrameKind.PING) {
      this.sender.writeControl(FrameKind.PONG);
      return;
    }
    if (kind === FrameKind.PONG) return; // any incoming bytes already count as a sign of life
    const id = message[1] as number; // (its shape was checked above)
    switch (kind) {
      case FrameKind.REPLY:
        this.outbound.onReply(id, message[2]);
        return;
      case FrameKind.ERROR:
        this.outbound.onError(id, message[2]);
        return;
      case FrameKind.ASK: {
        // An id still in progress must not be reused (docs/PROTOCOL.md §6.2): the first handler
        // would lose track of its asker (its signal would never abort) and the replies would mix.
        if (this.inFlight.isBusy(id)) {
          this.fail(protocolError(`it sent an ASK with id ${id} while its earlier ASK with that id was still in progress`));
          return;
        }
        // An optional fourth element carries ask options: { stream: window } asks for a streamed
        // reply, traceparent/tracestate carry trace context (§6.9). Other keys, and options that
        // are not a map, are ignored (§6.7); a window that is not an integer in 1 … 2^32−1 is a
        // protocol error (1.5 would otherwise grant 2 items).
        const askOptions = message[3] as { stream?: unknown } | undefined;
        let credit = -1;
        if (typeof askOptions === 'object' && askOptions !== null && askOptions.stream !== undefined) {
          const window = askOptions.stream;
          if (typeof window !== 'number' || !Number.isInteger(window) || window < 1 || window > 0xffffffff) {
            this.fail(protocolError(`an ASK's stream window must be an integer in 1 … 2^32−1`));
            return;
          }
          credit = window;
        }
        this.inbound.dispatch(message[2], id, credit, this.tracing !== undefined && askOptions !== undefined ? readCarrier(askOptions) : undefined);
        return;
      }
      case FrameKind.STREAM_ITEM:
        this.outbound.onStreamItem(id, message[2]);
        return;
      case FrameKind.STREAM_END:
        this.outbound.onStreamEnd(id);
        return;
      case FrameKind.CREDIT:
        this.streams.credit(id, message[2]);
        return;
      case FrameKind.CANCEL:
        this.inFlight.get(id)?.abort(new ConverseError('ABORTED', 'The asker cancelled this request (it aborted or timed out).'));
        this.streams.wake(id);
        return;
      case FrameKind.GOODBYE:
        if (!this.peerSaidGoodbye) this.report({ type: 'TRANSPORT.PEER_GOODBYE' });
        return;
    }
  }
}
