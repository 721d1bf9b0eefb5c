/**
 * The XState machines behind every connection and server, for inspection, visualisation
 * (paste either into the Stately editor) and for testing them with stand-in transports.
 */
export {
  connectionMachine,
  type ConnectionMachine,
  type ConnectionActorRef,
  type ConnectionContext,
  type ConnectionEvent,
  type ConnectionInput,
  type ConnectionState,
  type ConnectionTransport,
  type HandshakeResult,
  type PendingTable,
  type TransportCommand,
  type TransportEvent,
} from './connection.machine.js';
export {
  supervisorMachine,
  connectionGroupMachine,
  type AcceptedSocketEvent,
  type SupervisorActorRef,
  type SupervisorContext,
  type SupervisorEvent,
  type SupervisorInput,
  type SupervisorMachine,
  type SupervisorPort,
  type RefusalCode,
  type RefusalReason,
} from './supervisor.machine.js';
export { IdentitySlots, type PeerIdentity } from './identity-slots.js';
/** @deprecated the slots count peer identities now (uid, or certificate over TLS): use IdentitySlots. */
export { IdentitySlots as UidSlots } from './identity-slots.js';
export { ConnectionGroups } from './connection-groups.js';
export {
  reconnectMachine,
  type ReconnectActorRef,
  type ReconnectContext,
  type ReconnectEvent,
  type ReconnectInput,
  type ReconnectMachine,
  type ReconnectPolicy,
} from './reconnect.machine.js';
