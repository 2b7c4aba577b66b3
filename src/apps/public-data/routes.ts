import type { FastifyReply, FastifyRequest, RequestPayload } from 'fastify';
import { LRUCache } from 'lru-cache';
import { etagMatches, strongEtag } from '../../platform/cache/index.ts';
import { contentDisposition } from '../../platform/files/index.ts';
import { HttpError } from '../../platform/http/index.ts';
import { currentUser } from '../../platform/identity/index.ts';
import type { ModuleApp } from '../../platform/modules/index.ts';
import { PublicDataCodes } from './errors.ts';
import type { DatasetMeta } from './metadata.ts';
import {
  ApiKeyCreated,
  ApiKeyList,
  CreateApiKeyBody,
  CreateDatasetBody,
  CreateVersionBody,
  DatasetDetail,
  DatasetListQuery,
  DatasetPage,
  DatasetResponse,
  ExportQuery,
  IdParams,
  NotModified,
  PatchDatasetBody,
  RowsPage,
  RowsQuery,
  SlugParams,
  VersionAccepted,
  VersionList,
} from './schemas.ts';
import type { PublicDataService } from './service.ts';
import type { PublicDataSettings } from './settings.ts';

/** The permission of every publishing route (declared, with its default roles, in index.ts). */
export const DATASETS_MANAGE = 'datasets:manage';

const TAG = ['public-data'];

/** HTTP only: schemas in, a service call, schemas out; the public answers' caching headers. */
export function registerPublicDataRoutes(
  app: ModuleApp,
  service: PublicDataService,
  settings: PublicDataSettings,
): Promise<void> {
  const cacheControl = `public, max-age=${String(settings.maxAgeS)}, stale-while-revalidate=${String(settings.staleWhileRevalidateS)}`;

  /**
   * `X-API-Key`: a partner's key names the client the rate limits count (its own limit). A
   * callback hook: a request without a key (most) makes no promise.
   */
  function apiKey(
    request: FastifyRequest,
    _reply: FastifyReply,
    done: (error?: Error) => void,
  ): void {
    const header = request.headers['x-api-key'];
    if (header === undefined) {
      done();
      return;
    }
    const key = Array.isArray(header) ? header[0] : header;
    const verified =
      key === undefined || key.length > 100 ? Promise.resolve(null) : service.keys.verify(key);
    verified.then((found) => {
      if (!found) {
        done(new HttpError(PublicDataCodes.INVALID_API_KEY));
        return;
      }
      request.apiClientId = `public-data:${found.id}`;
      request.apiClientLimitPerMin = found.rateLimitPerMin;
      done();
    }, done);
  }

  /** The headers of every public answer: one copy for everyone, per origin for CORS. */
  function publicHeaders(reply: FastifyReply, etag: string): void {
    reply.header('cache-control', cacheControl);
    reply.header('etag', etag);
    // CORS answers differ by Origin: a shared cache must keep one copy per origin.
    const vary = reply.getHeader('vary');
    const listed =
      typeof vary === 'string' ? vary.split(',').map((v) => v.trim().toLowerCase()) : [];
    if (!listed.includes('origin') && !listed.includes('*'))
      reply.header('vary', typeof vary === 'string' && vary !== '' ? `${vary}, Origin` : 'Origin');
  }

  function notModified(request: FastifyRequest, reply: FastifyReply, etag: string): boolean {
    const inm = request.headers['if-none-match'];
    if (inm === undefined || !etagMatches(inm, etag)) return false;
    publicHeaders(reply, etag);
    // No body and no Content-Length (`send(null)` would serialise `null`: 4 bytes a
    // keep-alive client waits for).
    void reply.code(304).send();
    return true;
  }

  /**
   * Conditional GETs answered early (issue 20 (b): a 304 cost four times a bare Fastify one).
   * Every ETag a read route gives out is kept here by the exact URL, with the dataset metadata it
   * was derived from. A request carrying `If-None-Match` for such a URL is answered 304 in
   * `preParsing`, before query validation, the handler and its promises, when that metadata is
   * still this process's current copy (`peek` answers the same object: not reloaded, not older
   * than PUBLIC_DATA_METADATA_TTL, not dropped by a swap or an edit here). So the fast path is
   * exactly as fresh as the handler, which reads the same copy: a version swapped in by another
   * process shows within the TTL on both paths, one swapped in by this one at once. Everything
   * before `preParsing` still runs (request id, CORS, authentication, the API key, the rate
   * limit: a 304 counts like any request), and so does everything after the answer (security
   * headers, request id header, log line, metrics). The URL was validated when its ETag was made.
   * Bounded (lru-cache): 10,000 URLs or 8 MB of them.
   */
  const issued = new LRUCache<string, { slug: string; meta: DatasetMeta; etag: string }>({
    max: 10_000,
    maxSize: 8 * 1024 * 1024,
    sizeCalculation: (_value, url) => url.length + 64,
  });
  const metadata = service.metadata;

  function remember(request: FastifyRequest, slug: string, meta: DatasetMeta, etag: string) {
    issued.set(request.url, { slug, meta, etag });
  }

  function earlyNotModified(
    request: FastifyRequest,
    reply: FastifyReply,
    payload: RequestPayload,
    done: (error?: Error | null, payload?: RequestPayload) => void,
  ): void {
    const inm = request.headers['if-none-match'];
    const hit = inm === undefined ? undefined : issued.get(request.url);
    if (
      inm === undefined ||
      (request.method !== 'GET' && request.method !== 'HEAD') ||
      hit === undefined ||
      metadata.peek(hit.slug) !== hit.meta ||
      !etagMatches(inm, hit.etag)
    ) {
      done(null, payload);
      return;
    }
    publicHeaders(reply, hit.etag);
    void reply.code(304).send();
  }

  const publicRoute = { onRequest: apiKey };
  const conditionalRoute = { onRequest: apiKey, preParsing: earlyNotModified };
  const manage = { config: { permission: DATASETS_MANAGE } };
  const security = [{ bearerAuth: [] }];

  // ---- public reads ----

  app.get(
    '/public-data/datasets',
    {
      ...publicRoute,
      schema: {
        tags: TAG,
        summary: 'List published datasets (q over title and description, tag)',
        querystring: DatasetListQuery,
        response: { 200: DatasetPage, 304: NotModified },
      },
    },
    async (request, reply) => {
      // The route's compiled response schema serialises the page (as `return` would), then the
      // ETag is made of those bytes.
      const body = reply.serialize(await service.list(request.query)) as string;
      const etag = strongEtag(body);
      if (notModified(request, reply, etag)) return reply;
      publicHeaders(reply, etag);
      return reply.type('application/json; charset=utf-8').send(body as never);
    },
  );

  app.get(
    '/public-data/datasets/:slug',
    {
      ...conditionalRoute,
      schema: {
        tags: TAG,
        summary: 'A dataset: metadata, columns, row count, readable versions',
        params: SlugParams,
        response: { 200: DatasetDetail, 304: NotModified },
      },
    },
    async (request, reply) => {
      const answer = await service.detail(
        request.params.slug,
        request.url,
        request.headers['if-none-match'],
        etagMatches,
      );
      remember(request, request.params.slug, answer.meta, answer.etag);
      if (answer.notModified && notModified(request, reply, answer.etag)) return reply;
      publicHeaders(reply, answer.etag);
      return answer.body;
    },
  );

  app.get(
    '/public-data/datasets/:slug/rows',
    {
      ...conditionalRoute,
      schema: {
        tags: TAG,
        summary: 'Rows: filters (col=value, col[op]=value), sort, q, near, facets, keyset pages',
        params: SlugParams,
        querystring: RowsQuery,
        response: { 200: RowsPage, 304: NotModified },
      },
    },
    async (request, reply) => {
      const { slug } = request.params;
      const { etag, meta } = await service.conditional(slug, request.query.version, request.url);
      if (notModified(request, reply, etag)) {
        remember(request, slug, meta, etag);
        return reply;
      }
      const body = await service.rows(slug, request.query);
      // After the query: a URL whose filters are refused (422) never gets an early 304.
      remember(request, slug, meta, etag);
      publicHeaders(reply, etag);
      return reply.type('application/json; charset=utf-8').send(body as never);
    },
  );

  for (const format of ['csv', 'ndjson'] as const) {
    app.get(
      `/public-data/datasets/:slug/rows.${format}`,
      {
        ...conditionalRoute,
        schema: {
          tags: TAG,
          summary: `The whole filtered result as ${format === 'csv' ? 'CSV (formulas neutralised)' : 'NDJSON'}, streamed`,
          params: SlugParams,
          querystring: ExportQuery,
          produces: [format === 'csv' ? 'text/csv' : 'application/x-ndjson'],
        },
      },
      async (request, reply) => {
        const { slug } = request.params;
        const query = request.query;
        const { etag, meta } = await service.conditional(slug, query.version, request.url);
        if (notModified(request, reply, etag)) {
          remember(request, slug, meta, etag);
          return reply;
        }
        const type =
          format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8';
        if (request.method === 'HEAD') {
          // The headers only: no COPY for a body nobody reads (the filters are still checked).
          await service.checkExport(slug, query);
          remember(request, slug, meta, etag);
          publicHeaders(reply, etag);
          return reply.type(type).send('');
        }
        const exported = await service.export(slug, query, format);
        remember(request, slug, meta, etag);
        publicHeaders(reply, etag);
        reply.header('content-disposition', contentDisposition('attachment', exported.filename));
        return reply.type(type).send(exported.stream);
      },
    );
  }

  // ---- publishing (datasets:manage) ----

  app.post(
    '/public-data/datasets',
    {
      ...manage,
      schema: {
        tags: TAG,
        summary: 'Create a dataset',
        security,
        body: CreateDatasetBody,
        response: { 201: DatasetResponse },
      },
    },
    async (request, reply) => reply.code(201).send(await service.createDataset(request.body)),
  );

  app.patch(
    '/public-data/datasets/:slug',
    {
      ...manage,
      schema: {
        tags: TAG,
        summary: 'Edit a dataset’s metadata',
        security,
        params: SlugParams,
        body: PatchDatasetBody,
        response: { 200: DatasetResponse },
      },
    },
    async (request) => service.patchDataset(request.params.slug, request.body),
  );

  app.delete(
    '/public-data/datasets/:slug',
    {
      ...manage,
      schema: {
        tags: TAG,
        summary: 'Delete a dataset and its tables',
        security,
        params: SlugParams,
        response: { 204: { description: 'Done.', type: 'null' } },
      },
    },
    async (request, reply) => {
      await service.deleteDataset(request.params.slug);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/public-data/datasets/:slug/versions',
    {
      ...manage,
      schema: {
        tags: TAG,
        summary: 'Import a new version from an uploaded CSV or NDJSON file (a job)',
        security,
        params: SlugParams,
        body: CreateVersionBody,
        response: { 202: VersionAccepted },
      },
    },
    async (request, reply) => {
      const { userId } = currentUser(request);
      const accepted = await service.createVersion(request.params.slug, request.body, {
        userId,
        requestId: request.id,
      });
      return reply.code(202).send(accepted);
    },
  );

  app.get(
    '/public-data/datasets/:slug/versions',
    {
      ...manage,
      config: { ...manage.config, cache: 'private' },
      schema: {
        tags: TAG,
        summary: 'Versions with import status, row counts and bad rows',
        security,
        params: SlugParams,
        response: { 200: VersionList },
      },
    },
    async (request) => service.versions(request.params.slug),
  );

  app.post(
    '/public-data/api-keys',
    {
      ...manage,
      schema: {
        tags: TAG,
        summary: 'Issue an API key (shown once)',
        security,
        body: CreateApiKeyBody,
        response: { 201: ApiKeyCreated },
      },
    },
    async (request, reply) => {
      const { userId } = currentUser(request);
      return reply
        .code(201)
        .send(await service.createApiKey(request.body, { userId, requestId: request.id }));
    },
  );

  app.get(
    '/public-data/api-keys',
    {
      config: { permission: DATASETS_MANAGE, cache: 'private' },
      schema: {
        tags: TAG,
        summary: 'API keys with their limits and usage',
        security,
        response: { 200: ApiKeyList },
      },
    },
    async () => service.listApiKeys(),
  );

  app.delete(
    '/public-data/api-keys/:id',
    {
      ...manage,
      schema: {
        tags: TAG,
        summary: 'Revoke an API key',
        security,
        params: IdParams,
        response: { 204: { description: 'Done.', type: 'null' } },
      },
    },
    async (request, reply) => {
      await service.revokeApiKey(request.params.id);
      return reply.code(204).send(null);
    },
  );
  return Promise.resolve();
}
