import {
  fromBinary,
  fromJson,
  toBinary,
  toJson,
  type DescMessage,
  type JsonValue,
} from '@bufbuild/protobuf';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HttpCodes, HttpError, PROBLEM_CONTENT_TYPE } from '../http/index.ts';
import { ProblemSchema } from '../realtime/index.ts';

/** The media type of Protobuf bodies (the message type is named in `X-Protobuf-Message`). */
export const PROTOBUF_MEDIA_TYPE = 'application/x-protobuf';
const JSON_MEDIA_TYPE = 'application/json';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The Protobuf messages of a route (`registerProtobuf` on its scope): a request body sent as
     * `application/x-protobuf` is decoded into its JSON form and validated by the route's JSON
     * schema; the answer is encoded when `Accept` prefers Protobuf. Field names are the messages'
     * JSON names, so both carry the same data.
     */
    protobuf?: { body?: DescMessage; response?: DescMessage };
  }
}

/** Whether `Accept` ranks Protobuf above JSON (q-values; the order breaks ties, JSON first). */
export function prefersProtobuf(accept: string | undefined): boolean {
  if (!accept || !accept.includes(PROTOBUF_MEDIA_TYPE)) return false;
  let proto = -1;
  let json = -1;
  for (const part of accept.split(',')) {
    const [type = '', ...params] = part.trim().toLowerCase().split(';');
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const weight = q ? Number(q.slice(2)) : 1;
    const w = Number.isFinite(weight) ? weight : 0;
    if (type === PROTOBUF_MEDIA_TYPE) proto = Math.max(proto, w);
    else if (type === JSON_MEDIA_TYPE || type === 'application/*' || type === '*/*')
      json = Math.max(json, type === JSON_MEDIA_TYPE ? w : w - 0.0001);
  }
  return proto > 0 && proto > json;
}

function encode(desc: DescMessage, json: unknown): Uint8Array {
  return toBinary(desc, fromJson(desc, json as JsonValue, { ignoreUnknownFields: true }));
}

/**
 * Content negotiation between JSON and Protobuf for the routes of this scope that declare
 * `config.protobuf`: a body parser for `application/x-protobuf` and an `onSend` hook that
 * encodes answers (problems as `groundwork.problem.v1.Problem`) when `Accept` prefers it.
 */
export function registerProtobuf(app: FastifyInstance): void {
  app.addContentTypeParser(
    PROTOBUF_MEDIA_TYPE,
    { parseAs: 'buffer' },
    (request: FastifyRequest, body: Buffer, done: (err: Error | null, body?: unknown) => void) => {
      const desc = request.routeOptions.config.protobuf?.body;
      if (!desc) {
        done(
          new HttpError(HttpCodes.UNSUPPORTED_MEDIA_TYPE, {
            detail: 'This route takes JSON bodies only.',
          }),
        );
        return;
      }
      try {
        done(null, toJson(desc, fromBinary(desc, body)));
      } catch {
        done(
          new HttpError(HttpCodes.MALFORMED_BODY, {
            detail: `The body is not a valid ${desc.typeName}.`,
          }),
        );
      }
    },
  );
  app.addHook('onSend', (request: FastifyRequest, reply: FastifyReply, payload, done) => {
    const config = request.routeOptions.config.protobuf;
    if (!config) {
      done(null, payload);
      return;
    }
    reply.header('vary', 'accept');
    if (!prefersProtobuf(request.headers.accept) || typeof payload !== 'string') {
      done(null, payload);
      return;
    }
    const type = String(reply.getHeader('content-type') ?? '');
    const desc = type.startsWith(PROBLEM_CONTENT_TYPE.split(';')[0] ?? '')
      ? ProblemSchema
      : reply.statusCode < 300 && type.startsWith(JSON_MEDIA_TYPE)
        ? config.response
        : undefined;
    if (!desc) {
      done(null, payload);
      return;
    }
    try {
      const bytes = encode(desc, JSON.parse(payload));
      reply.header('content-type', PROTOBUF_MEDIA_TYPE);
      reply.header('x-protobuf-message', desc.typeName);
      reply.removeHeader('content-length');
      done(null, Buffer.from(bytes));
    } catch (error) {
      done(error as Error);
    }
  });
}

/** For the OpenAPI document: the media types of a route that negotiates Protobuf. */
export const BOTH_MEDIA_TYPES = [JSON_MEDIA_TYPE, PROTOBUF_MEDIA_TYPE];
