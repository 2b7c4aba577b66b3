import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { currentUser } from '../identity/index.ts';
import type { ModuleApp } from '../modules/index.ts';
import type { EndpointRow } from './repository.ts';
import {
  CreateEndpointBody,
  CreatedEndpointResponse,
  DeliveryListQuery,
  DeliveryPage,
  EndpointId,
  EndpointListQuery,
  EndpointPage,
  EndpointResponse,
  EventTypeList,
  MessageAccepted,
  MessageId,
  RecoverBody,
  RecoverResponse,
  RotatedSecretResponse,
  TestBody,
  UpdateEndpointBody,
} from './schemas.ts';
import { WEBHOOKS_MANAGE, type Actor, type WebhookService } from './service.ts';

const TAG = 'webhooks';
const security = [{ bearerAuth: [] }];
const iso = (d: Date | null) => (d === null ? null : new Date(d).toISOString());

function actor(request: FastifyRequest): Actor {
  const { userId } = currentUser(request);
  return { userId, amr: request.amr ?? [], requestId: request.id };
}

function endpointJson(e: EndpointRow): EndpointResponse {
  return {
    id: e.id,
    ownerId: e.ownerId,
    url: e.url,
    description: e.description,
    eventTypes: e.eventTypes,
    enabled: e.enabled,
    ordered: e.ordered,
    rateLimitPerSecond: e.rateLimitPerSecond,
    disabledReason: e.disabledReason,
    disabledAt: iso(e.disabledAt),
    failingSince: iso(e.failingSince),
    createdAt: new Date(e.createdAt).toISOString(),
    updatedAt: new Date(e.updatedAt).toISOString(),
  };
}

/**
 * The webhooks API under /api/v1: endpoints (owner-scoped; `webhooks:admin` acts for anyone),
 * secrets, test sends, delivery logs, replays and the event catalog. Every route needs
 * `webhooks:manage`.
 */
export function registerWebhookRoutes(app: ModuleApp, service: WebhookService): void {
  const config = { permission: WEBHOOKS_MANAGE };

  app.get(
    '/webhooks/endpoints',
    {
      config,
      schema: {
        tags: [TAG],
        summary: 'List webhook endpoints',
        description:
          'The caller’s endpoints, newest first (keyset pagination); with `webhooks:admin`, every owner’s.',
        security,
        querystring: EndpointListQuery,
        response: { 200: EndpointPage },
      },
    },
    async (request) => {
      const page = await service.list(actor(request), request.query);
      return { page: page.page, items: page.items.map(endpointJson) };
    },
  );

  app.post(
    '/webhooks/endpoints',
    {
      config,
      schema: {
        tags: [TAG],
        summary: 'Create a webhook endpoint',
        description:
          'The URL is checked (scheme, credentials, every address its host resolves to) and refused with 422 `WEBHOOK_URL_REFUSED`. The answer carries the signing secret, shown only this once.',
        security,
        body: CreateEndpointBody,
        response: { 201: CreatedEndpointResponse },
      },
    },
    async (request, reply) => {
      const { endpoint, secret } = await service.create(actor(request), request.body);
      return reply.code(201).send({ endpoint: endpointJson(endpoint), secret });
    },
  );

  app.get(
    '/webhooks/endpoints/:id',
    {
      config,
      schema: {
        tags: [TAG],
        summary: 'Show a webhook endpoint',
        security,
        params: EndpointId,
        response: { 200: EndpointResponse },
      },
    },
    async (request) => endpointJson(await service.get(actor(request), request.params.id)),
  );

  app.patch(
    '/webhooks/endpoints/:id',
    {
      config,
      schema: {
        tags: [TAG],
        summary: 'Change a webhook endpoint',
        description:
          '`enabled: true` re-enables an endpoint that deliveries disabled (and restarts its failure clock).',
        security,
        params: EndpointId,
        body: UpdateEndpointBody,
        response: { 200: EndpointResponse },
      },
    },
    async (request) =>
      endpointJson(await service.update(actor(request), request.params.id, request.body)),
  );

  app.delete(
    '/webhooks/endpoints/:id',
    {
      config,
      schema: {
        tags: [TAG],
        summary: 'Delete a webhook endpoint',
        description: 'Its secrets and delivery logs go with it.',
        security,
        params: EndpointId,
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      await service.remove(actor(request), request.params.id);
      reply.code(204);
      return null;
    },
  );

  app.post(
    '/webhooks/endpoints/:id/secrets/rotate',
    {
      config,
      schema: {
        tags: [TAG],
        summary: 'Rotate the signing secret',
        description:
          'Answers the new secret, shown only this once. The previous secret keeps signing alongside it for `WEBHOOKS_SECRET_OVERLAP` (default 24 h): each request then carries two signatures.',
        security,
        params: EndpointId,
        response: { 200: RotatedSecretResponse },
      },
    },
    async (request) => {
      const { secret, previousValidUntil } = await service.rotate(
        actor(request),
        request.params.id,
      );
      return { secret, previousValidUntil: previousValidUntil.toISOString() };
    },
  );

  app.post(
    '/webhooks/endpoints/:id/test',
    {
      config,
      schema: {
        tags: [TAG],
        summary: 'Send a test event',
        description:
          'Sends a `webhook.test` event to this endpoint now (signed and retried like any other); 202 with the message id, to follow in the deliveries.',
        security,
        params: EndpointId,
        body: Type.Union([TestBody, Type.Null()]),
        response: { 202: MessageAccepted },
      },
    },
    async (request, reply) => {
      const result = await service.test(actor(request), request.params.id, request.body?.eventType);
      return reply.code(202).send(result);
    },
  );

  app.get(
    '/webhooks/endpoints/:id/deliveries',
    {
      config,
      schema: {
        tags: [TAG],
        summary: 'Delivery log of an endpoint',
        description:
          'Messages newest first (keyset pagination), filtered by `status` (`pending`, `succeeded`, `failed`) and `eventType`; each with its attempts: time, response status, duration, the first 4 KB of the response body and the error class.',
        security,
        params: EndpointId,
        querystring: DeliveryListQuery,
        response: { 200: DeliveryPage },
      },
    },
    async (request) => {
      const page = await service.deliveries(actor(request), request.params.id, request.query);
      return {
        page: page.page,
        items: page.items.map((m) => ({
          id: m.id,
          eventId: m.eventId,
          eventType: m.eventType,
          eventTime: new Date(m.eventTime).toISOString(),
          status: m.status,
          attemptCount: m.attempts,
          nextAttemptAt: m.status === 'pending' ? iso(m.nextAttemptAt) : null,
          createdAt: new Date(m.createdAt).toISOString(),
          finishedAt: iso(m.finishedAt),
          lastErrorClass: m.lastErrorClass,
          attempts: m.attemptLog.map((a) => ({
            attemptedAt: new Date(a.attemptedAt).toISOString(),
            outcome: a.outcome,
            statusCode: a.statusCode,
            durationMs: a.durationMs,
            responseBody: a.responseBody,
            errorClass: a.errorClass,
          })),
        })),
      };
    },
  );

  app.post(
    '/webhooks/messages/:id/replay',
    {
      config,
      schema: {
        tags: [TAG],
        summary: 'Re-deliver one message',
        description:
          'Queues a delivered or failed message again, with a fresh retry schedule; 409 `WEBHOOK_MESSAGE_PENDING` while it is still pending.',
        security,
        params: MessageId,
        response: { 202: MessageAccepted },
      },
    },
    async (request, reply) =>
      reply.code(202).send(await service.replay(actor(request), request.params.id)),
  );

  app.post(
    '/webhooks/endpoints/:id/recover',
    {
      config,
      schema: {
        tags: [TAG],
        summary: 'Re-deliver failed messages since a time',
        security,
        params: EndpointId,
        body: RecoverBody,
        response: { 202: RecoverResponse },
      },
    },
    async (request, reply) =>
      reply
        .code(202)
        .send(
          await service.recover(actor(request), request.params.id, new Date(request.body.since)),
        ),
  );

  app.get(
    '/webhooks/event-types',
    {
      config,
      schema: {
        tags: [TAG],
        summary: 'The event catalog',
        description:
          'Every event type the enabled modules declare: name, version, description, the JSON Schema of its `data` and an example.',
        security,
        response: { 200: EventTypeList },
      },
    },
    () => Promise.resolve({ items: service.eventTypes() }),
  );
}
