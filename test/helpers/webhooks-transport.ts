import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * Verifies a Standard Webhooks signature as the specification words it, independently of the
 * code under test: HMAC-SHA256 with the base64-decoded secret over `id.timestamp.body`, any of the
 * space-separated `v1,` signatures matching. The timestamp tolerance is not checked here.
 */
export function verifyBySpec(
  secret: string,
  body: string,
  headers: Record<string, string | string[] | undefined>,
): boolean {
  const one = (name: string) => {
    const value = headers[name];
    return Array.isArray(value) ? value[0] : value;
  };
  const [id, timestamp, signature] = [
    one('webhook-id'),
    one('webhook-timestamp'),
    one('webhook-signature'),
  ];
  if (!id || !timestamp || !signature) return false;
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest();
  return signature.split(' ').some((part) => {
    const [version, value] = part.split(',');
    if (version !== 'v1' || !value) return false;
    const given = Buffer.from(value, 'base64');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

/** The `Webhook` class of the `standardwebhooks` npm package, as far as the tests use it. */
export type StandardWebhook = new (secret: string) => {
  verify(payload: string, headers: Record<string, string>): unknown;
};

/**
 * The `standardwebhooks` package's `Webhook` class, or undefined when the package is not
 * installed (the import is by a computed name so the type check does not need it).
 */
export async function loadStandardWebhooks(): Promise<StandardWebhook | undefined> {
  const name = 'standardwebhooks';
  try {
    const module = (await import(name)) as { Webhook?: StandardWebhook };
    return module.Webhook;
  } catch {
    return undefined;
  }
}

export interface ReceivedRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
  /** TLS only: the SNI name the client sent. */
  servername: string | undefined;
}

export interface Receiver {
  readonly url: string;
  readonly port: number;
  readonly requests: ReceivedRequest[];
  /** TCP connections accepted (a blocked attempt must make none). */
  connections(): number;
  /** Connections closed so far. */
  closedConnections(): number;
  close(): Promise<void>;
}

export type ReceiverHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  received: ReceivedRequest,
) => void;

/**
 * A real HTTP(S) server on 127.0.0.1 (port 0): records each request with its body, then lets the
 * handler answer (default: 204). `server` lets a test bring an https server.
 */
export async function startReceiver(
  handler: ReceiverHandler = (_req, res) => res.writeHead(204).end(),
  server: Server = createServer(),
): Promise<Receiver> {
  const requests: ReceivedRequest[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;
  let closed = 0;
  const onSocket = (socket: Socket) => {
    connections += 1;
    sockets.add(socket);
    socket.on('close', () => {
      closed += 1;
      sockets.delete(socket);
    });
  };
  server.on('connection', onSocket);
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const socket = req.socket as Socket & { servername?: string | false };
      const received: ReceivedRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        servername: typeof socket.servername === 'string' ? socket.servername : undefined,
      };
      requests.push(received);
      handler(req, res, received);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const scheme = 'cert' in server || 'setSecureContext' in server ? 'https' : 'http';
  return {
    url: `${scheme}://127.0.0.1:${port}`,
    port,
    requests,
    connections: () => connections,
    closedConnections: () => closed,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A port on 127.0.0.1 where nothing listens (taken, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
