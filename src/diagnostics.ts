import diagnosticsChannel from 'node:diagnostics_channel';

/**
 * Tracing hooks on `node:diagnostics_channel`, in the manner of undici: tools such as
 * OpenTelemetry instrumentations subscribe by name. Publishing costs one `hasSubscribers` check
 * when nobody listens, and nothing is allocated for a message unless someone does.
 *
 * | channel | message |
 * | --- | --- |
 * | `interprocess-converse:connection:open` | `{ connection }` once the handshake is done |
 * | `interprocess-converse:connection:close` | `{ connection, error? }` when it reaches `closed` |
 * | `interprocess-converse:ask:start` | `{ connection, id, event }` an ask was written |
 * | `interprocess-converse:ask:end` | `{ connection, id, type }` its reply arrived |
 * | `interprocess-converse:ask:error` | `{ connection, id, type, error }` it failed (timeout, abort, remote error, close) |
 */
export const channels = {
  connectionOpen: diagnosticsChannel.channel('interprocess-converse:connection:open'),
  connectionClose: diagnosticsChannel.channel('interprocess-converse:connection:close'),
  askStart: diagnosticsChannel.channel('interprocess-converse:ask:start'),
  askEnd: diagnosticsChannel.channel('interprocess-converse:ask:end'),
  askError: diagnosticsChannel.channel('interprocess-converse:ask:error'),
} as const;
