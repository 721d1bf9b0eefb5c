import { createActor } from 'xstate';
import type { ConnectionActorRef } from '../machines/connection.machine.js';
import { reconnectMachine, type ReconnectActorRef, type ReconnectPolicy } from '../machines/reconnect.machine.js';
import { AsyncQueue } from './async-queue.js';
import type { IncomingMessageImpl } from './connection/contexts.js';
import { Connection, type ConnectionStateName, type IncomingMessage } from './connection/connection.js';
import type { ConnectionCore } from './connection/core.js';
import { ConverseError, connectionClosedError } from './errors.js';
import { checkTimeout } from './timeouts.js';
import type { AskOptions, MessageFields, MessageType, ReplyOf } from './types.js';

/** `connect(name, { reconnect })`: keep one logical connection across server restarts. */
export interface ReconnectOptions extends Partial<ReconnectPolicy> {
  /**
   * What `ask`, `send` and `tell` do while disconnected: `'wait'` queues them (bounded by
   * `maxQueue` and by each ask's own timeout) and sends them once reconnected; `'fail'` rejects
   * them at once with CONNECTION_CLOSED. @default 'wait'
   */
  whileDisconnected?: 'wait' | 'fail';
  /** Most messages that may wait while disconnected; more are rejected. @default 1000 */
  maxQueue?: number;
}

export interface ResolvedReconnect extends ReconnectPolicy {
  whileDisconnected: 'wait' | 'fail';
  maxQueue: number;
}

export function resolveReconnectPolicy(options: ReconnectOptions): ResolvedReconnect {
  const policy: ResolvedReconnect = {
    initialDelay: options.initialDelay ?? 100,
    maxDelay: options.maxDelay ?? 5000,
    factor: options.factor ?? 2,
    jitter: options.jitter ?? 0.2,
    maxAttempts: options.maxAttempts ?? Infinity,
    whileDisconnected: options.whileDisconnected ?? 'wait',
    maxQueue: options.maxQueue ?? 1000,
  };
  const bad = (what: string): never => {
    throw new ConverseError('INVALID_ARGUMENT', `reconnect.${what}`);
  };
  if (!(policy.initialDelay >= 0)) bad('initialDelay must be a non-negative number of ms');
  if (!(policy.maxDelay >= policy.initialDelay)) bad('maxDelay must be at least initialDelay');
  if (!(policy.factor >= 1)) bad('factor must be at least 1');
  if (!(policy.jitter >= 0 && policy.jitter <= 1)) bad('jitter must be between 0 and 1');
  if (!(policy.maxAttempts >= 1)) bad('maxAttempts must be at least 1');
  if (policy.whileDisconnected !== 'wait' && policy.whileDisconnected !== 'fail') bad("whileDisconnected must be 'wait' or 'fail'");
  if (!(Number.isInteger(policy.maxQueue) && policy.maxQueue >= 0)) bad('maxQueue must be a non-negative integer');
  return policy;
}

/** A message waiting for the connection to come back. */
interface Queued {
  run(remainingTimeout: number | undefined): Promise<unknown>;
  resolve(value: unknown): void;
  reject(error: unknown): void;
  deadline: number;
  timer: NodeJS.Timeout | undefined;
  cleanup(): void;
}

const INCOMING_HIGH_WATER = 256;

/**
 * A client connection that reconnects. The physical connections come and go underneath (each
 * its own connection actor, `actor`); this object, its handlers and its incoming stream stay.
 *
 * Nothing is ever sent twice behind the user's back: asks in flight when the connection is lost
 * reject with CONNECTION_CLOSED (retry them if they are safe to repeat); only messages that were
 * never written wait for the next connection.
 */
export class ReconnectingConnection<Local = any, Remote = any> extends Connection<Local, Remote> {
  private readonly machine: ReconnectActorRef;
  private readonly policy: ResolvedReconnect;
  private readonly queue: Queued[] = [];
  private readonly messages = new AsyncQueue<IncomingMessageImpl>();
  private resumePump: (() => void) | undefined;
  /** The application iterates the logical connection (each physical one is told: attachReader). */
  private iterating = false;
  private userClosed = false;

  /** @internal Use `connect(name, { reconnect })`. */
  constructor(first: ConnectionCore, id: string, policy: ResolvedReconnect, reconnect: () => Promise<ConnectionCore>) {
    let resolveClosed!: () => void;
    super(first, id, new Promise<void>((resolve) => (resolveClosed = resolve)));
    this.policy = policy;
    this.messages.onTake = () => {
      if (this.messages.size < INCOMING_HIGH_WATER / 4) this.resumePump?.();
    };
    this.machine = createActor(reconnectMachine, {
      input: {
        policy,
        reconnect: async () => {
          const core = await reconnect();
          if (this.userClosed) {
            core.release(); // closed while this attempt was under way
            throw connectionClosedError();
          }
          return core;
        },
        adopt: (core) => this.adopt(core as ConnectionCore),
        finish: (error) => {
          this.core.facade = this;
          for (const item of this.queue.splice(0)) {
            item.cleanup();
            item.reject(error ?? connectionClosedError());
          }
          this.messages.end();
          if (this.core.phase !== 'closed') {
            void super.close();
            void this.core.closed.then(resolveClosed);
          } else resolveClosed();
        },
      },
    });
    this.machine.start();
    this.follow(first);
  }

  /** The logical connection's actor: `active`, `reconnecting` (waiting / connecting) or `closed`. */
  get reconnectActor(): ReconnectActorRef {
    return this.machine;
  }

  /** The current physical connection's actor. */
  override get actor(): ConnectionActorRef {
    return super.actor;
  }

  /** As for any connection, plus `'reconnecting'` while the server is away. */
  override get state(): ConnectionStateName {
    const snapshot = this.machine.getSnapshot();
    if (snapshot.status !== 'active') return 'closed';
    if (snapshot.matches('reconnecting') || this.core.phase === 'closed') return 'reconnecting';
    return this.core.phase;
  }

  /** Times the connection has been re-established. */
  get reconnects(): number {
    return this.machine.getSnapshot().context.reconnects;
  }

  override ask<K extends MessageType<Remote>>(event: { type: K } & MessageFields<Remote, K>, options?: AskOptions): Promise<ReplyOf<Remote, K>> {
    if (this.connected) return super.ask(event, options);
    return this.enqueue((timeout) => super.ask(event, { ...options, timeout }), event.type, options) as Promise<ReplyOf<Remote, K>>;
  }

  override send<K extends MessageType<Remote>>(
    event: { type: K } & MessageFields<Remote, K>,
    options?: AskOptions,
  ): Promise<{ reply: Promise<ReplyOf<Remote, K>> }> {
    if (this.connected) return super.send(event, options);
    return this.enqueue((timeout) => super.send(event, { ...options, timeout }), event.type, options) as Promise<{ reply: Promise<ReplyOf<Remote, K>> }>;
  }

  override tell<K extends MessageType<Remote>>(event: { type: K } & MessageFields<Remote, K>): Promise<void> {
    if (this.connected) return super.tell(event);
    return this.enqueue(() => super.tell(event), event.type, undefined) as Promise<void>;
  }

  override close(options?: { timeout?: number }): Promise<void> {
    if (!this.userClosed) {
      this.userClosed = true;
      if (this.core.phase !== 'closed') void super.close(options);
      // The physical connection's own `closed` (this.closed is the logical one, which waits for this).
      void this.core.closed.then(() => this.endLogical());
    }
    return this.closed;
  }

  override destroy(error?: ConverseError): void {
    this.userClosed = true;
    super.destroy(error);
    this.endLogical();
  }

  /** Close the logical connection, unless it already ended (gave up, or closed before). */
  private endLogical(): void {
    if (this.machine.getSnapshot().status === 'active') this.machine.send({ type: 'CLOSE' });
  }

  override [Symbol.asyncIterator](): AsyncIterator<IncomingMessage<Local>> {
    // The pump reads each physical connection for the logical stream; only this marks a reader.
    this.iterating = true;
    this.core.attachReader();
    return {
      next: () => this.messages.next() as Promise<IteratorResult<IncomingMessage<Local>>>,
      return: () => Promise.resolve({ value: undefined, done: true }),
    };
  }

  /** Messages go straight out only on an active physical connection of an active logical one. */
  private get connected(): boolean {
    return this.core.phase === 'active' && this.machine.getSnapshot().matches('active');
  }

  private follow(core: ConnectionCore): void {
    core.facade = this;
    // The library's own handlers (introspection's $converse.event) carry over to the new connection.
    this.applyInternalHandlers(core);
    if (this.iterating) core.attachReader();
    void this.pump(core);
    void core.closed.then(() => {
      if (this.core === core && !this.userClosed) this.machine.send({ type: 'CONNECTION.LOST', error: core.closeReason });
    });
  }

  private adopt(core: ConnectionCore): void {
    this.core = core;
    this.follow(core);
    for (const item of this.queue.splice(0)) {
      item.cleanup();
      const remaining = Math.max(0, item.deadline - performance.now());
      item.run(remaining).then(item.resolve, item.reject);
    }
  }

  /** Move the physical connection's incoming messages to the logical stream, backpressured. */
  private async pump(core: ConnectionCore): Promise<void> {
    for (;;) {
      if (this.messages.size >= INCOMING_HIGH_WATER) await new Promise<void>((resolve) => (this.resumePump = resolve));
      const next = await core.incoming.next();
      if (next.done) return;
      this.messages.push(next.value);
    }
  }

  private enqueue(run: Queued['run'], type: string, options: AskOptions | undefined): Promise<unknown> {
    if (this.userClosed || this.machine.getSnapshot().status !== 'active') return Promise.reject(connectionClosedError());
    if (this.policy.whileDisconnected === 'fail') {
      return Promise.reject(
        new ConverseError('CONNECTION_CLOSED', `"${type}" was not sent: the connection to the server is down and reconnecting (whileDisconnected: 'fail'). Retry later.`),
      );
    }
    if (this.queue.length >= this.policy.maxQueue) {
      return Promise.reject(
        new ConverseError('CONNECTION_CLOSED', `"${type}" was not sent: ${this.policy.maxQueue} messages already wait for the server to come back (reconnect.maxQueue).`),
      );
    }
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(new ConverseError('ABORTED', `"${type}" was aborted before it was sent.`, { cause: signal.reason }));
    if (options?.timeout !== undefined) {
      try {
        checkTimeout('timeout', options.timeout);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    const timeout = options?.timeout ?? this.core.options.replyTimeout;
    return new Promise((resolve, reject) => {
      const item: Queued = {
        run,
        resolve,
        reject,
        deadline: performance.now() + timeout,
        timer: undefined,
        cleanup: () => {
          if (item.timer) clearTimeout(item.timer);
          signal?.removeEventListener('abort', onAbort);
        },
      };
      const drop = (error: ConverseError): void => {
        const index = this.queue.indexOf(item);
        if (index < 0) return;
        this.queue.splice(index, 1);
        item.cleanup();
        reject(error);
      };
      const onAbort = (): void => drop(new ConverseError('ABORTED', `"${type}" was aborted while waiting for the server to come back; it was never sent.`, { cause: signal?.reason }));
      if (Number.isFinite(timeout)) {
        item.timer = setTimeout(
          () => drop(new ConverseError('TIMEOUT', `"${type}" waited ${timeout} ms for the server to come back and was never sent.`)),
          timeout,
        );
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(item);
    });
  }
}
