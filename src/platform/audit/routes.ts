import { Readable } from 'node:stream';
import { Type } from 'typebox';
import type { Database } from '../db/index.ts';
import { defineErrorCodes, HttpError, type FieldError } from '../http/index.ts';
import type { ModuleApp } from '../modules/index.ts';
import { exportAuditRecords } from './export.ts';
import { auditClient, recordAudit } from './record.ts';

/** The permission of the export (granted to the built-in `admin` role by default). */
export const AUDIT_EXPORT_PERMISSION = 'audit:export';

/** The longest time range one export covers. */
export const AUDIT_EXPORT_MAX_DAYS = 31;
const MAX_RANGE_MS = AUDIT_EXPORT_MAX_DAYS * 24 * 3_600_000;

export const AuditCodes = defineErrorCodes('audit', {
  AUDIT_EXPORT_RANGE_INVALID: {
    kind: 'Invalid',
    title: 'Invalid export range',
    description: `\`to\` must be after \`from\`, at most ${AUDIT_EXPORT_MAX_DAYS} days later.`,
  },
});

const DateTime = (description: string) =>
  Type.String({ format: 'date-time', maxLength: 64, description });

const ExportQuery = Type.Object({
  from: DateTime('Start of the range (inclusive), an RFC 3339 date-time with its offset.'),
  to: DateTime(
    `End of the range (exclusive): after \`from\`, at most ${AUDIT_EXPORT_MAX_DAYS} days later.`,
  ),
});

const NDJSON = 'application/x-ndjson';

/** `GET /admin/audit-events/export`: the trail of a time range as NDJSON, streamed. */
export async function registerAuditRoutes(
  app: ModuleApp,
  options: { database: Database },
): Promise<void> {
  const { database } = options;
  app.get(
    '/admin/audit-events/export',
    {
      config: { permission: AUDIT_EXPORT_PERMISSION, cache: 'private' },
      schema: {
        tags: ['admin'],
        security: [{ bearerAuth: [] }],
        errorCodes: [AuditCodes.AUDIT_EXPORT_RANGE_INVALID],
        summary: 'The audit trail of a time range, as NDJSON',
        description: `Every audit record with \`occurredAt\` in [\`from\`, \`to\`) (at most ${AUDIT_EXPORT_MAX_DAYS} days), one JSON object per line in chain order (\`seq\`), with its chain fields: \`seq\`, \`id\`, \`occurredAt\` (UTC, microseconds), \`action\`, \`actorId\`, \`subjectType\`, \`subjectId\`, \`ip\`, \`requestId\`, \`data\`, \`prevHash\`, \`hash\`. Streamed from one database snapshot; a response cut short ends without its final chunk (an error on the client's side, never a silently shorter file). The export is itself audited (\`audit.export\`). Needs \`${AUDIT_EXPORT_PERMISSION}\`.`,
        querystring: ExportQuery,
        produces: [NDJSON],
        response: {
          200: {
            description: 'One audit record per line (NDJSON); empty when the range holds none.',
            content: { [NDJSON]: { schema: Type.String() } },
          },
        },
      },
    },
    async (request, reply) => {
      const from = new Date(request.query.from);
      const to = new Date(request.query.to);
      const errors: FieldError[] = [];
      if (Number.isNaN(from.getTime()))
        errors.push({ path: '/querystring/from', message: 'is not a valid date-time' });
      if (Number.isNaN(to.getTime()))
        errors.push({ path: '/querystring/to', message: 'is not a valid date-time' });
      else if (errors.length === 0 && to.getTime() <= from.getTime())
        errors.push({ path: '/querystring/to', message: 'must be after from' });
      else if (errors.length === 0 && to.getTime() - from.getTime() > MAX_RANGE_MS)
        errors.push({
          path: '/querystring/to',
          message: `must be at most ${AUDIT_EXPORT_MAX_DAYS} days after from`,
        });
      if (errors.length > 0) throw new HttpError(AuditCodes.AUDIT_EXPORT_RANGE_INVALID, { errors });
      await recordAudit(database.db, {
        action: 'audit.export',
        actorId: request.userId ?? null,
        ...auditClient({ ip: request.ip, requestId: request.id }),
        data: { from: from.toISOString(), to: to.toISOString() },
      });
      reply.type(`${NDJSON}; charset=utf-8`);
      const body = Readable.from(exportAuditRecords(database.db, database.pool, { from, to }), {
        objectMode: false,
      });
      // The type provider types the body by the 200 schema (the NDJSON text); Fastify streams a
      // Readable, whose chunks are that text.
      return reply.send(body as unknown as string);
    },
  );
}
