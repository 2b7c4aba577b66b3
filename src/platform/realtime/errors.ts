import { defineErrorCodes } from '../http/index.ts';

/** The realtime protocol's own problem codes (the rest are the HTTP ones, unchanged). */
export const RealtimeCodes = defineErrorCodes('realtime', {
  MALFORMED_FRAME: {
    kind: 'BadRequest',
    title: 'Malformed frame',
    description:
      'The frame is not valid for the connection’s subprotocol (not JSON, not a Protobuf `Frame`, a binary frame on the JSON protocol or text on the Protobuf one, or missing fields).',
  },
  UNKNOWN_FRAME_TYPE: {
    kind: 'BadRequest',
    title: 'Unknown frame type',
    description: 'The frame’s `type` is not one the protocol knows.',
  },
  CHANNEL_NOT_FOUND: {
    kind: 'NotFound',
    title: 'Channel not found',
    description:
      'No such channel, or one this connection may not subscribe to (the two are not told apart).',
  },
  TOO_MANY_SUBSCRIPTIONS: {
    kind: 'RateLimited',
    title: 'Too many subscriptions',
    description: 'The connection holds `REALTIME_MAX_SUBSCRIPTIONS` subscriptions already.',
  },
  PUBLISH_NOT_ALLOWED: {
    kind: 'Forbidden',
    title: 'Publishing not allowed',
    description: 'Clients may not publish on this channel.',
  },
  UNKNOWN_COMMAND: {
    kind: 'NotFound',
    title: 'Unknown command',
    description: 'No command of this name is declared.',
  },
  ALREADY_AUTHENTICATED: {
    kind: 'BadRequest',
    title: 'Already authenticated',
    description: 'The connection sent a second `auth` frame.',
  },
  SUBPROTOCOL_REQUIRED: {
    kind: 'BadRequest',
    title: 'Subprotocol required',
    description:
      'The upgrade offered neither `groundwork.v1.json` nor `groundwork.v1.protobuf` in `Sec-WebSocket-Protocol`.',
  },
  TOKEN_IN_URL: {
    kind: 'BadRequest',
    title: 'Token in the URL',
    description:
      'Access tokens are never accepted in the URL (they end up in logs and histories): send an `auth` frame or the `bearer.<token>` subprotocol.',
  },
});
