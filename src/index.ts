/**
 * interprocess-converse: typed request/reply messaging between processes over local sockets
 * (Unix domain sockets; named pipes on Windows). Every connection is an XState actor; a server
 * is a supervisor actor with one child per client.
 */
export { listen } from './listen.js';
export { Server, type BroadcastResult, type ServerEvents } from './server.js';
export { connect } from './client.js';
export { Connection, type ConnectionStateName, type IncomingMessage } from './connection/connection.js';
export { ReconnectingConnection, type ReconnectOptions } from './reconnect.js';
export type { ConnectionStats } from './connection/stats.js';
export { ConverseError, ErrorCodes, isConverseError, type ErrorCode, type RemoteErrorInfo } from './errors.js';
export { generateSocketName, MAX_SOCKET_PATH_BYTES } from './transport/names.js';
export { peerCredentialsSupported, type PeerCredentials } from './transport/peer-credentials.js';
export type { ConnectOptions, ConversationOptions, InspectOption, ListenOptions } from './options.js';
export { defineProtocol, protocolDescription, type ApiOf, type DeclaredProtocol, type MessageDescription, type MessageSchemas, type ProtocolDefinition, type ProtocolDescription, type StandardSchemaV1, type ValidationIssue } from './protocol.js';
export { answer } from './session.js';
export type { StreamItemOf, StreamOptions } from './types.js';
export type { AskOptions, EventFor, EventOf, MessageFields, MessageType, Protocol, ReplyOf } from './types.js';
export type { HandlerContext, Handlers } from './handlers.js';
export type { ConnectionState, ConnectionActorRef } from '../machines/connection.machine.js';
export type { SupervisorActorRef } from '../machines/supervisor.machine.js';
export { saveRecording, loadRecording, renderRecording, type FlightRecording, type RecordedFrame, type RecordedTransition } from './recording.js';
export { PROTOCOL_VERSION } from './wire/constants.js';
export {
  introspect,
  observeServer,
  describeServer,
  describeConnection,
  INTROSPECTION_VERSION,
  IntrospectionMessages,
  type ConnectionInfo,
  type ErrorInfo,
  type IntrospectionClient,
  type IntrospectionEvent,
  type IntrospectionOptions,
  type ServerInfo,
  type ServerWatch,
  type WatchStart,
} from './introspection.js';
export { serveDashboard, machineGraph, type Dashboard, type DashboardOptions, type DashboardState, type MachineGraph } from './dashboard/index.js';
export type { TlsOptions } from './transport/network.js';
export type { NatsOptions } from './transport/nats/options.js';
export { formatTraceRecord, type RedactInput, type TraceLevel, type TraceOption, type TraceOptions, type TraceRecord } from './trace.js';
export type { WorkInFlight } from './connection/work.js';
