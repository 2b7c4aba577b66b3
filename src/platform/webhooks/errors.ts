import { defineErrorCodes } from '../http/index.ts';

/** The webhooks area's error codes (stable once shipped). */
export const WebhookCodes = defineErrorCodes('webhooks', {
  WEBHOOK_ENDPOINT_NOT_FOUND: {
    kind: 'NotFound',
    title: 'Webhook endpoint not found',
    description: 'No endpoint with this id that the caller may see.',
  },
  WEBHOOK_MESSAGE_NOT_FOUND: {
    kind: 'NotFound',
    title: 'Webhook message not found',
    description: 'No message with this id on an endpoint the caller may see.',
  },
  WEBHOOK_URL_REFUSED: {
    kind: 'Invalid',
    title: 'Webhook URL refused',
    description:
      'The URL is malformed, not https in production, carries credentials, or its host resolves to an address webhooks may not reach (loopback, private, link-local, metadata...).',
  },
  WEBHOOK_EVENT_TYPE_UNKNOWN: {
    kind: 'Invalid',
    title: 'Unknown event type',
    description: 'An event type in `eventTypes` is not declared by any enabled module.',
  },
  WEBHOOK_MESSAGE_PENDING: {
    kind: 'Conflict',
    title: 'Message still pending',
    description: 'The message is still being delivered or waiting for a retry: nothing to replay.',
  },
  WEBHOOK_MESSAGE_TOO_LARGE: {
    kind: 'Conflict',
    title: 'Message too large to send',
    description:
      'The event’s body is larger than `WEBHOOKS_PAYLOAD_MAX_BYTES`: the message is never sent, so it cannot be replayed.',
  },
});
