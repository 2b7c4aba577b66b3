import { Type, type Static } from 'typebox';

const int = (def: number, min: number, max: number, description: string) =>
  Type.Integer({ default: def, minimum: min, maximum: max, description });

/** The realtime module's settings (`REALTIME_*`), validated with the platform's at start. */
export const RealtimeConfig = Type.Object({
  REALTIME_MAX_FRAME_BYTES: int(
    65_536,
    1_024,
    16_777_216,
    'The largest frame a client may send; a larger one closes the socket with 1009.',
  ),
  REALTIME_MESSAGES_PER_SECOND: int(
    100,
    1,
    1_000_000,
    'Frames a connection may send per second (a burst of as many is allowed); past it frames are refused with `RATE_LIMITED`, and a client sending ten times as many is disconnected (1008).',
  ),
  REALTIME_MAX_SUBSCRIPTIONS: int(
    100,
    1,
    100_000,
    'Channels one connection may be subscribed to at once (`TOO_MANY_SUBSCRIPTIONS` past it).',
  ),
  REALTIME_MAX_CONNECTIONS_PER_USER: int(
    20,
    1,
    1_000_000,
    'Open sockets per signed-in user in one process; the next one is closed with 1008.',
  ),
  REALTIME_MAX_CONNECTIONS_PER_IP: int(
    1_000,
    1,
    10_000_000,
    'Open sockets per client address in one process; past it the upgrade is refused with 429.',
  ),
  REALTIME_AUTH_TIMEOUT_MS: int(
    5_000,
    100,
    60_000,
    'A connection that sent no `auth` frame (and no `bearer.` subprotocol) within this time is closed with 1008; anonymous clients send `{"type":"auth"}` without a token.',
  ),
  REALTIME_HEARTBEAT_INTERVAL_MS: int(
    25_000,
    100,
    600_000,
    'The server pings every socket this often; one that answered nothing since the previous ping is closed (dead peer).',
  ),
  REALTIME_MAX_BUFFERED_BYTES: int(
    1_048_576,
    16_384,
    268_435_456,
    'A client whose unsent data passes this is disconnected (1013) rather than buffered without bound.',
  ),
  REALTIME_HISTORY_SIZE: int(
    100,
    0,
    100_000,
    'Events kept per channel for recovery (`subscribe` with `offset`); 0 keeps none.',
  ),
  REALTIME_HISTORY_TTL_MS: int(
    300_000,
    1_000,
    86_400_000,
    'How long a channel’s history is kept after its last event.',
  ),
});
export type RealtimeConfig = Static<typeof RealtimeConfig>;

/** The settings as the hub uses them. */
export interface RealtimeSettings {
  readonly maxFrameBytes: number;
  readonly messagesPerSecond: number;
  readonly maxSubscriptions: number;
  readonly maxConnectionsPerUser: number;
  readonly maxConnectionsPerIp: number;
  readonly authTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly maxBufferedBytes: number;
  readonly historySize: number;
  readonly historyTtlMs: number;
}

export const REALTIME_DEFAULTS: RealtimeSettings = {
  maxFrameBytes: 65_536,
  messagesPerSecond: 100,
  maxSubscriptions: 100,
  maxConnectionsPerUser: 20,
  maxConnectionsPerIp: 1_000,
  authTimeoutMs: 5_000,
  heartbeatIntervalMs: 25_000,
  maxBufferedBytes: 1_048_576,
  historySize: 100,
  historyTtlMs: 300_000,
};

/** The module's slice (absent when the configuration was loaded without it: the defaults). */
export function realtimeSettings(slice: Partial<RealtimeConfig> | undefined): RealtimeSettings {
  if (!slice || slice.REALTIME_MAX_FRAME_BYTES === undefined) return REALTIME_DEFAULTS;
  return {
    maxFrameBytes: slice.REALTIME_MAX_FRAME_BYTES,
    messagesPerSecond: slice.REALTIME_MESSAGES_PER_SECOND ?? REALTIME_DEFAULTS.messagesPerSecond,
    maxSubscriptions: slice.REALTIME_MAX_SUBSCRIPTIONS ?? REALTIME_DEFAULTS.maxSubscriptions,
    maxConnectionsPerUser:
      slice.REALTIME_MAX_CONNECTIONS_PER_USER ?? REALTIME_DEFAULTS.maxConnectionsPerUser,
    maxConnectionsPerIp:
      slice.REALTIME_MAX_CONNECTIONS_PER_IP ?? REALTIME_DEFAULTS.maxConnectionsPerIp,
    authTimeoutMs: slice.REALTIME_AUTH_TIMEOUT_MS ?? REALTIME_DEFAULTS.authTimeoutMs,
    heartbeatIntervalMs:
      slice.REALTIME_HEARTBEAT_INTERVAL_MS ?? REALTIME_DEFAULTS.heartbeatIntervalMs,
    maxBufferedBytes: slice.REALTIME_MAX_BUFFERED_BYTES ?? REALTIME_DEFAULTS.maxBufferedBytes,
    historySize: slice.REALTIME_HISTORY_SIZE ?? REALTIME_DEFAULTS.historySize,
    historyTtlMs: slice.REALTIME_HISTORY_TTL_MS ?? REALTIME_DEFAULTS.historyTtlMs,
  };
}
