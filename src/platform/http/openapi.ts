import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { listErrorCodes } from './errors.ts';
import { PROBLEM_CONTENT_TYPE } from './problem.ts';

export interface OpenApiInfo {
  title: string;
  version: string;
  description: string;
  tags: { name: string; description: string }[];
}

/** The RFC 9457 problem body, documented once and referenced by every error response. */
export function problemSchema() {
  return {
    type: 'object',
    required: ['type', 'title', 'status', 'detail', 'code', 'requestId'],
    properties: {
      type: {
        type: 'string',
        description: 'URI identifying the problem type.',
        examples: ['urn:groundwork:problem:validation-failed'],
      },
      title: { type: 'string', description: 'Short summary of the problem type.' },
      status: { type: 'integer', description: 'HTTP status code.' },
      detail: { type: 'string', description: 'Explanation of this occurrence.' },
      code: {
        type: 'string',
        description: 'Stable machine-readable error code (see docs/errors.md).',
        enum: listErrorCodes().map((c) => c.code),
      },
      requestId: {
        type: 'string',
        description: 'The request id, also in the `X-Request-Id` header and the logs.',
      },
      errors: {
        type: 'array',
        description: 'Field errors, for `VALIDATION_FAILED`.',
        items: {
          type: 'object',
          required: ['path', 'message'],
          properties: {
            path: { type: 'string', examples: ['/body/email'] },
            message: { type: 'string' },
          },
        },
      },
    },
    examples: [
      {
        type: 'urn:groundwork:problem:validation-failed',
        title: 'Validation failed',
        status: 422,
        detail: 'The request does not match the schema.',
        code: 'VALIDATION_FAILED',
        requestId: '0193b6f2-3c4e-7a1b-9f00-2a1d3e4f5a6b',
        errors: [{ path: '/body/email', message: 'must match format "email"' }],
      },
    ],
  };
}

const problemRef = (description: string) => ({
  description,
  content: {
    [PROBLEM_CONTENT_TYPE.split(';')[0] ?? 'application/problem+json']: {
      schema: { $ref: '#/components/schemas/Problem' },
    },
  },
});

interface RouteSchemaLike {
  body?: unknown;
  querystring?: unknown;
  params?: unknown;
  headers?: unknown;
  response?: Record<string, unknown>;
  hide?: boolean;
}

/** Adds the error responses every route can give to its documented responses. */
function withErrorResponses(schema: RouteSchemaLike, method: string): RouteSchemaLike {
  const response: Record<string, unknown> = { ...(schema.response ?? {}) };
  const add = (status: string, description: string) => {
    response[status] ??= problemRef(description);
  };
  if (schema.body !== undefined || ['POST', 'PUT', 'PATCH'].includes(method)) {
    add('400', 'Malformed body (`MALFORMED_BODY`).');
    add('413', 'Body too large (`PAYLOAD_TOO_LARGE`).');
    add('415', 'Unsupported content type (`UNSUPPORTED_MEDIA_TYPE`).');
  }
  if (
    schema.body !== undefined ||
    schema.querystring !== undefined ||
    schema.params !== undefined ||
    schema.headers !== undefined
  ) {
    add('422', 'Validation failed (`VALIDATION_FAILED`), with `errors` per field.');
  }
  add('500', 'Unexpected error (`INTERNAL_ERROR`); the detail never shows internals.');
  add(
    '503',
    'Overloaded, timed out, shutting down or a dependency is unavailable; see `Retry-After`.',
  );
  return { ...schema, response };
}

/** OpenAPI 3.1 document at `/openapi.json` and the reference page at `/docs`. */
export async function registerOpenApi(app: FastifyInstance, info: OpenApiInfo): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: info.title,
        version: info.version,
        description: `${info.description}\n\nEvery error is an RFC 9457 \`application/problem+json\` body with a stable \`code\`; the codes are listed in the \`Problem\` schema and in docs/errors.md.`,
      },
      tags: info.tags,
      components: {
        securitySchemes: {
          bearerAuth: {
            type: 'http',
            scheme: 'bearer',
            bearerFormat: 'JWT',
            description: 'Access token from `POST /api/v1/auth/login`.',
          },
          metricsToken: {
            type: 'http',
            scheme: 'bearer',
            description: 'The `METRICS_TOKEN` of the deployment, for `/metrics` and `/health`.',
          },
        },
        schemas: { Problem: problemSchema() as never },
      },
    },
    transform: ({ schema, url, route }) => {
      const s = (schema ?? {}) as RouteSchemaLike;
      if (s.hide) return { schema: s, url };
      const method = Array.isArray(route.method) ? String(route.method[0]) : String(route.method);
      const documented = withErrorResponses(s, method);
      // Public cached GETs (route `config.cache` with a max age) answer 304 to a matching ETag.
      const cache = (route.config as { cache?: unknown } | undefined)?.cache;
      if (typeof cache === 'object' && cache !== null && method === 'GET') {
        documented.response = {
          ...documented.response,
          304: {
            description:
              'Not modified: the `If-None-Match` tag matches the current `ETag`; no body.',
          },
        };
      }
      return { schema: documented, url };
    },
  });
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    uiConfig: { docExpansion: 'list', deepLinking: true, url: '/openapi.json' },
    staticCSP: false,
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
