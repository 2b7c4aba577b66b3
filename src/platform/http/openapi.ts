import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { listErrorCodes } from './errors.ts';
import { STATUS_CODES } from 'node:http';
import { PROBLEM_CONTENT_TYPE } from './problem.ts';
import { addExamples, problemExample } from './openapi-examples.ts';
import { documentedErrorAnswers, type RouteShape } from './route-errors.ts';

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

const PROBLEM_MEDIA_TYPE = PROBLEM_CONTENT_TYPE.split(';')[0] ?? 'application/problem+json';
/**
 * The `type` base of the examples: `PROBLEM_TYPE_BASE`'s default (the document is the same for
 * every deployment; a deployment that changes the base changes the prefix only).
 */
const EXAMPLE_TYPE_BASE = 'urn:groundwork:problem:';

/**
 * The problem media type of one error status, with an example: the route's own code for that
 * status when it declares one (`schema.errorCodes`: the likeliest answer), else the first.
 */
function problemContent(status: number, codes: readonly string[], declared: readonly string[]) {
  const code = codes.find((c) => declared.includes(c)) ?? codes[0] ?? 'INTERNAL_ERROR';
  return {
    [PROBLEM_MEDIA_TYPE]: {
      schema: { $ref: '#/components/schemas/Problem' },
      example: problemExample(status, code, EXAMPLE_TYPE_BASE),
    },
  };
}

interface RouteSchemaLike {
  body?: unknown;
  querystring?: unknown;
  params?: unknown;
  headers?: unknown;
  response?: Record<string, unknown>;
  errorCodes?: readonly string[];
  hide?: boolean;
}

type SchemaObject = Record<string, unknown>;

/** A route's response entry in the OpenAPI form (`description`, `content`); a bare schema is JSON. */
function asResponse(
  entry: unknown,
  status: string,
): { description: string; content?: SchemaObject } {
  const object = (entry ?? {}) as SchemaObject;
  if ('content' in object) return object as { description: string; content?: SchemaObject };
  const description =
    typeof object.description === 'string'
      ? object.description
      : (STATUS_CODES[Number(status)] ?? status);
  return { description, content: { 'application/json': { schema: object } } };
}

/**
 * Adds every error answer of the route (`documentedErrors`: derived from its config, schema and
 * declared codes) as a problem+json response. A status the route already documents with its own
 * body (readiness's 503) gets the problem body as a second media type.
 */
function withErrorResponses(schema: RouteSchemaLike, route: RouteShape): RouteSchemaLike {
  const response: Record<string, unknown> = { ...(schema.response ?? {}) };
  const declared = schema.errorCodes ?? [];
  for (const [status, { codes, description }] of documentedErrorAnswers(route)) {
    const key = String(status);
    const own = response[key];
    const problem = problemContent(status, codes, declared);
    if (own === undefined) {
      response[key] = { description, content: problem };
      continue;
    }
    const entry = asResponse(own, key);
    if (entry.content?.[PROBLEM_MEDIA_TYPE] === undefined)
      response[key] = {
        ...entry,
        description: `${entry.description} Or a problem: ${description}`,
        content: { ...entry.content, ...problem },
      };
  }
  const { errorCodes: _declared, ...rest } = schema;
  return { ...rest, response };
}

/** A copy of an object schema whose properties with a default are not listed as required. */
function defaultsOptional(schema: unknown): unknown {
  if (typeof schema !== 'object' || schema === null) return schema;
  const object = schema as SchemaObject;
  const properties = object.properties as Record<string, SchemaObject> | undefined;
  if (!Array.isArray(object.required) || properties === undefined) return schema;
  const required = (object.required as string[]).filter(
    (name) => properties[name]?.default === undefined,
  );
  if (required.length === object.required.length) return schema;
  const copy: SchemaObject = { ...object, required };
  if (required.length === 0) delete copy.required;
  return copy;
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
    // Every body without an example gets one sampled from its schema (after the routes' own).
    transformObject: (document) =>
      'openapiObject' in document ? addExamples(document.openapiObject) : document.swaggerObject,
    transform: ({ schema, url, route }) => {
      const s = (schema ?? {}) as RouteSchemaLike;
      if (s.hide) return { schema: s, url };
      const method = Array.isArray(route.method) ? String(route.method[0]) : String(route.method);
      const documented = withErrorResponses(s, route);
      // A parameter with a default may be left out: not required in the document.
      for (const part of ['querystring', 'params', 'headers', 'body'] as const) {
        if (documented[part] !== undefined) documented[part] = defaultsOptional(documented[part]);
      }
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
