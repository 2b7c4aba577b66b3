import { newId, withTransaction, type PaginateOptions } from '../db/index.ts';
import { HttpError } from '../http/index.ts';
import type { Platform } from '../modules/index.ts';
import { WebhookCodes } from './errors.ts';
import { eventsOf, webhookBody } from './fan-out.ts';
import * as repo from './repository.ts';
import type { EndpointRow } from './repository.ts';
import type { WebhooksRuntime } from './runtime.ts';
import type { CreateEndpointBody, UpdateEndpointBody } from './schemas.ts';
import { webhooksDb } from './tables.ts';
import { checkWebhookUrl, newWebhookSecret, type Resolver } from './transport.ts';

/** Acts for any owner's endpoints. */
export const WEBHOOKS_ADMIN = 'webhooks:admin';
/** Manages one's own endpoints. */
export const WEBHOOKS_MANAGE = 'webhooks:manage';

/** The caller: who, and how their session authenticated (for MFA-required permissions). */
export interface Actor {
  userId: string;
  amr: readonly string[];
  requestId?: string;
}

export interface WebhookServiceOptions {
  platform: Platform;
  runtime: () => WebhooksRuntime;
  paging: PaginateOptions;
  /** Resolves endpoint hosts (tests give a fake one); the system resolver by default. */
  resolver?: Resolver;
}

/** Endpoint management, replays and the event catalog: the rules, no HTTP, no SQL. */
export class WebhookService {
  readonly #o: WebhookServiceOptions;

  constructor(options: WebhookServiceOptions) {
    this.#o = options;
  }

  get #db() {
    return webhooksDb(this.#o.platform.database.db);
  }

  async #isAdmin(actor: Actor): Promise<boolean> {
    return this.#o.platform.access.hasPermission(actor.userId, WEBHOOKS_ADMIN, actor.amr);
  }

  /** The endpoint if the actor may act on it; another owner's endpoint is "not found" (404). */
  async #endpoint(actor: Actor, id: string): Promise<EndpointRow> {
    const endpoint = await repo.findEndpoint(this.#db, id);
    if (endpoint && (endpoint.ownerId === actor.userId || (await this.#isAdmin(actor))))
      return endpoint;
    throw new HttpError(WebhookCodes.WEBHOOK_ENDPOINT_NOT_FOUND);
  }

  async #checkUrl(url: string): Promise<string> {
    const { settings } = this.#o.runtime();
    const check = await checkWebhookUrl(
      url,
      { allowPrivateNetworks: settings.allowPrivateNetworks, requireHttps: settings.requireHttps },
      this.#o.resolver,
    );
    if (!check.ok)
      throw new HttpError(WebhookCodes.WEBHOOK_URL_REFUSED, {
        detail: `The URL was refused: ${check.reason}.`,
        errors: [{ path: '/url', message: check.reason }],
      });
    return check.url.href;
  }

  #checkEventTypes(types: readonly string[] | undefined): void {
    const events = eventsOf(this.#o.platform);
    if (!types) return;
    const known = new Set(events.types().map((t) => t.type));
    const unknown = types.filter((t) => !known.has(t));
    if (unknown.length > 0)
      throw new HttpError(WebhookCodes.WEBHOOK_EVENT_TYPE_UNKNOWN, {
        detail: `Unknown event types: ${unknown.join(', ')} (see GET /api/v1/webhooks/event-types).`,
        errors: unknown.map((t) => ({ path: '/eventTypes', message: `unknown event type ${t}` })),
      });
  }

  /** Creates an endpoint owned by the actor, with its first secret (returned once). */
  async create(
    actor: Actor,
    input: CreateEndpointBody,
  ): Promise<{ endpoint: EndpointRow; secret: string }> {
    const url = await this.#checkUrl(input.url);
    this.#checkEventTypes(input.eventTypes);
    const secret = newWebhookSecret();
    const { box } = this.#o.runtime();
    const endpoint = await withTransaction(this.#o.platform.database.db, (trx) =>
      repo.insertEndpoint(
        webhooksDb(trx),
        {
          id: newId(),
          ownerId: actor.userId,
          url,
          description: input.description ?? '',
          eventTypes: input.eventTypes ?? [],
          enabled: input.enabled ?? true,
          ordered: input.ordered ?? false,
          rateLimitPerSecond: input.rateLimitPerSecond ?? null,
        },
        { id: newId(), sealed: box.seal(secret) },
      ),
    );
    return { endpoint, secret };
  }

  /** The actor's endpoints; an admin's listing holds every owner's. */
  async list(actor: Actor, query: Readonly<Record<string, unknown>>) {
    const all = await this.#isAdmin(actor);
    return repo.listEndpoints(this.#db, all ? null : actor.userId, query, this.#o.paging);
  }

  get(actor: Actor, id: string): Promise<EndpointRow> {
    return this.#endpoint(actor, id);
  }

  async update(actor: Actor, id: string, patch: UpdateEndpointBody): Promise<EndpointRow> {
    await this.#endpoint(actor, id);
    const url = patch.url === undefined ? undefined : await this.#checkUrl(patch.url);
    this.#checkEventTypes(patch.eventTypes);
    const updated = await repo.updateEndpoint(this.#db, id, {
      ...patch,
      ...(url === undefined ? {} : { url }),
    });
    if (!updated) throw new HttpError(WebhookCodes.WEBHOOK_ENDPOINT_NOT_FOUND);
    if (patch.enabled === true) {
      // Messages that waited while it was disabled go now.
      const runtime = this.#o.runtime();
      await runtime.wake(await runtime.deliverer.waitingMessages([id]));
    }
    return updated;
  }

  async remove(actor: Actor, id: string): Promise<void> {
    await this.#endpoint(actor, id);
    if (!(await repo.deleteEndpoint(this.#db, id)))
      throw new HttpError(WebhookCodes.WEBHOOK_ENDPOINT_NOT_FOUND);
  }

  /** A new current secret (returned once); the previous ones sign until the overlap ends. */
  async rotate(actor: Actor, id: string): Promise<{ secret: string; previousValidUntil: Date }> {
    await this.#endpoint(actor, id);
    const { box, settings } = this.#o.runtime();
    const secret = newWebhookSecret();
    await withTransaction(this.#o.platform.database.db, (trx) =>
      repo.rotateSecret(
        webhooksDb(trx),
        id,
        { id: newId(), sealed: box.seal(secret) },
        settings.secretOverlapS,
      ),
    );
    return { secret, previousValidUntil: new Date(Date.now() + settings.secretOverlapS * 1000) };
  }

  /** Sends a `webhook.test` message now (whatever the endpoint's `eventTypes`). */
  async test(actor: Actor, id: string, eventType?: string): Promise<{ messageId: string }> {
    const endpoint = await this.#endpoint(actor, id);
    let example: unknown = null;
    if (eventType !== undefined) {
      this.#checkEventTypes([eventType]);
      example = eventsOf(this.#o.platform)
        .types()
        .find((t) => t.type === eventType)?.example;
    }
    const runtime = this.#o.runtime();
    const now = new Date();
    const messageId = newId();
    await withTransaction(this.#o.platform.database.db, async (trx) => {
      const created = await repo.insertMessages(webhooksDb(trx), [
        {
          id: messageId,
          endpointId: endpoint.id,
          eventId: newId(),
          eventType: 'webhook.test',
          eventTime: now,
          body: webhookBody('webhook.test', now, {
            endpointId: endpoint.id,
            eventType: eventType ?? null,
            example: example ?? null,
          }),
        },
      ]);
      await runtime.wake(created, { trx });
    });
    return { messageId };
  }

  async deliveries(actor: Actor, id: string, query: Readonly<Record<string, unknown>>) {
    await this.#endpoint(actor, id);
    return repo.listDeliveries(this.#db, id, query, this.#o.paging);
  }

  /** Queues one finished message again, with a fresh retry schedule. */
  async replay(actor: Actor, messageId: string): Promise<{ messageId: string }> {
    const message = await repo.findMessage(this.#db, messageId);
    if (!message || (message.ownerId !== actor.userId && !(await this.#isAdmin(actor))))
      throw new HttpError(WebhookCodes.WEBHOOK_MESSAGE_NOT_FOUND);
    const runtime = this.#o.runtime();
    const queued = await withTransaction(this.#o.platform.database.db, async (trx) => {
      const ok = await repo.requeueMessage(webhooksDb(trx), messageId);
      if (ok) await runtime.wake([messageId], { trx });
      return ok;
    });
    if (!queued) {
      if (message.status === 'failed') throw new HttpError(WebhookCodes.WEBHOOK_MESSAGE_TOO_LARGE);
      throw new HttpError(WebhookCodes.WEBHOOK_MESSAGE_PENDING);
    }
    return { messageId };
  }

  /** Queues again every failed message of the endpoint since a time. */
  async recover(actor: Actor, id: string, since: Date): Promise<{ requeued: number }> {
    await this.#endpoint(actor, id);
    const runtime = this.#o.runtime();
    return withTransaction(this.#o.platform.database.db, async (trx) => {
      const ids = await repo.requeueFailedSince(webhooksDb(trx), id, since);
      await runtime.wake(ids, { trx });
      return { requeued: ids.length };
    });
  }

  /** Every event type of the enabled modules, with its payload schema and example. */
  eventTypes() {
    const types = eventsOf(this.#o.platform).types();
    return types.map((t) => ({
      type: t.type,
      version: t.version,
      description: t.description,
      schema: jsonSchema(t.payload),
      example: t.example,
    }));
  }
}

/** A TypeBox schema as plain JSON Schema (TypeBox's symbols and functions dropped). */
function jsonSchema(schema: unknown): unknown {
  return JSON.parse(JSON.stringify(schema)) as unknown;
}
