import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A message the fake accepted, as Twilio would store it. */
export interface FakeTwilioMessage {
  sid: string;
  accountSid: string;
  to: string;
  from: string | null;
  messagingServiceSid: string | null;
  body: string;
}

/**
 * A local stand-in for Twilio's Messages API, faithful to what the adapter relies on:
 * `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` with a form body, HTTP Basic
 * authentication checked against the account SID and auth token (the path's SID must be the
 * user's), `To` and `Body` required and one of `From` or `MessagingServiceSid`, 201 with the
 * message resource, and errors as Twilio writes them: `{code, message, more_info, status}`
 * (20003 authentication, 20404 not found, 21602 body, 21603 sender, 21604 and 21211 recipient).
 * `failNext` makes the next sends fail with a given Twilio error (a provider outage, a blocked
 * number).
 */
export class FakeTwilio {
  readonly accountSid = `AC${randomBytes(16).toString('hex')}`;
  readonly authToken = randomBytes(16).toString('hex');
  readonly messages: FakeTwilioMessage[] = [];
  /** Requests seen (any path), for asserting that nothing was sent. */
  requests = 0;
  #failures: { status: number; code: number; message: string }[] = [];
  #server: Server | null = null;
  #url = '';

  get url(): string {
    return this.#url;
  }

  /** The next `count` sends fail with this Twilio error (default: 500, code 20500). */
  failNext(
    count = 1,
    error = { status: 500, code: 20500, message: 'Internal Server Error' },
  ): void {
    for (let i = 0; i < count; i++) this.#failures.push(error);
  }

  /** The newest message to a number. */
  lastTo(to: string): FakeTwilioMessage | undefined {
    return this.messages.filter((m) => m.to === to).at(-1);
  }

  /** The 6-digit code of the newest message to a number. */
  codeFor(to: string): string {
    const body = this.lastTo(to)?.body ?? '';
    const code = /\b([0-9]{6})\b/.exec(body)?.[1];
    if (code === undefined) throw new Error(`no code sent to ${to}`);
    return code;
  }

  async start(): Promise<string> {
    this.#server = createServer((req, res) => {
      this.requests += 1;
      void this.#handle(req, res);
    });
    await new Promise<void>((resolve) => this.#server?.listen(0, '127.0.0.1', resolve));
    const { port } = this.#server.address() as AddressInfo;
    this.#url = `http://127.0.0.1:${String(port)}`;
    return this.#url;
  }

  async close(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  #error(res: ServerResponse, status: number, code: number, message: string): void {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        code,
        message,
        more_info: `https://www.twilio.com/docs/errors/${String(code)}`,
        status,
      }),
    );
  }

  #authorized(req: IncomingMessage): boolean {
    const header = req.headers.authorization ?? '';
    const expected = Buffer.from(
      `Basic ${Buffer.from(`${this.accountSid}:${this.authToken}`).toString('base64')}`,
    );
    const given = Buffer.from(header);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const match = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\.json$/.exec(req.url ?? '');
    if (!match || req.method !== 'POST')
      return this.#error(res, 404, 20404, 'The requested resource was not found');
    if (!this.#authorized(req) || match[1] !== this.accountSid)
      return this.#error(res, 401, 20003, 'Authenticate');
    if (!(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded'))
      return this.#error(res, 400, 21604, "A 'To' phone number is required.");
    const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
    const to = form.get('To');
    const body = form.get('Body');
    const from = form.get('From');
    const service = form.get('MessagingServiceSid');
    if (to === null || to === '')
      return this.#error(res, 400, 21604, "A 'To' phone number is required.");
    if (!/^\+[1-9][0-9]{6,14}$/.test(to))
      return this.#error(res, 400, 21211, `The 'To' number ${to} is not a valid phone number.`);
    if (body === null || body === '')
      return this.#error(res, 400, 21602, 'Message body is required.');
    if ((from === null || from === '') && (service === null || service === ''))
      return this.#error(res, 400, 21603, "A 'From' phone number is required.");
    const failure = this.#failures.shift();
    if (failure) return this.#error(res, failure.status, failure.code, failure.message);
    const sid = `SM${randomBytes(16).toString('hex')}`;
    this.messages.push({
      sid,
      accountSid: this.accountSid,
      to,
      from,
      messagingServiceSid: service,
      body,
    });
    res.writeHead(201, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        sid,
        account_sid: this.accountSid,
        to,
        from,
        messaging_service_sid: service,
        body,
        status: 'queued',
        num_segments: '1',
        direction: 'outbound-api',
        date_created: new Date().toUTCString(),
        uri: `/2010-04-01/Accounts/${this.accountSid}/Messages/${sid}.json`,
      }),
    );
  }
}
