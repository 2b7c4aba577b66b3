/** What the demo seeders (`scripts/seed/*.ts`) share: uploads and API calls through `inject`. */
import type { FastifyInstance } from 'fastify';
import { newId } from '../../src/platform/db/index.ts';

/** A multipart body of one `purpose` field and one JPEG file part, as `POST /files` takes it. */
export function multipart(
  purpose: string,
  data: Buffer,
  filename: string,
): { body: Buffer; contentType: string } {
  const boundary = `----seed${newId()}`;
  const body = Buffer.concat([
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n${purpose}\r\n` +
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: image/jpeg\r\n\r\n`,
    ),
    data,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  return { body, contentType: `multipart/form-data; boundary=${boundary}` };
}

/** One API call through the app; an unexpected status stops the seed with the answer. */
export async function call<T>(
  app: FastifyInstance,
  method: 'GET' | 'POST' | 'PUT' | 'PATCH',
  url: string,
  headers: Record<string, string>,
  payload?: unknown,
  expected = [200, 201, 204],
): Promise<T> {
  const res = await app.inject({
    method,
    url,
    headers,
    ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
  });
  if (!expected.includes(res.statusCode))
    throw new Error(`${method} ${url}: ${String(res.statusCode)} ${res.body}`);
  return (res.body ? res.json() : undefined) as T;
}
