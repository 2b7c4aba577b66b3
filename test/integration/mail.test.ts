import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { withTransaction } from '../../src/platform/db/index.ts';
import { HttpError } from '../../src/platform/http/index.ts';
import { MailLimitedError, notificationTemplate } from '../../src/platform/mail/index.ts';
import {
  MAIL_FROM,
  PUBLIC_URL,
  SmtpSink,
  eventually,
  startMailHarness,
  type MailHarness,
  type ReceivedMail,
} from '../helpers/mail.ts';
import { mailTestApp } from '../helpers/mail-app.ts';
import { assertProblem } from '../helpers/problem.ts';
import { freePort } from '../helpers/process.ts';

const PASSWORD = 'Sm7p-pa55word!x';
const AUTH = { user: 'mailer', pass: PASSWORD };
const base64 = (s: string) => Buffer.from(s).toString('base64');

/** The entities Handlebars writes, back to characters. */
function decodeEntities(html: string): string {
  return html.replace(/&(amp|lt|gt|quot|#x27|#x60|#x3D);/g, (_, e: string) => {
    const map: Record<string, string> = {
      amp: '&',
      lt: '<',
      gt: '>',
      quot: '"',
      '#x27': "'",
      '#x60': '`',
      '#x3D': '=',
    };
    return map[e] ?? '';
  });
}

function headerNames(mail: ReceivedMail): string[] {
  return [...mail.parsed.headers.keys()];
}

/** The received message whose Message-ID belongs to this delivery. */
function messageFor(sink: SmtpSink, deliveryId: string): ReceivedMail | undefined {
  return sink.received.find((m) => m.parsed.messageId?.includes(deliveryId));
}

async function sentRecord(h: MailHarness, deliveryId: string) {
  return eventually(`delivery ${deliveryId} sent`, async () => {
    const row = (await h.deliveries()).find((d) => d.id === deliveryId);
    return row?.status === 'sent' && row;
  });
}

describe('mail through a real SMTP server', async () => {
  let sink: SmtpSink;
  let h: MailHarness;

  before(async () => {
    sink = new SmtpSink(await freePort(), { auth: AUTH });
    await sink.start();
    h = await startMailHarness({ smtpUrl: sink.url(), apps: [mailTestApp] });
  });
  after(async () => {
    await h.close();
    await sink.stop();
  });

  test('a notification arrives with its headers, both parts and the link; the record says sent', async () => {
    const { deliveryId, jobId } = await h.mail.send({
      template: notificationTemplate,
      to: 'ada@example.com',
      vars: {
        title: 'Your export is ready',
        paragraphs: ['It has 42 rows.', 'It stays for a week.'],
        action: { label: 'Download', path: '/exports/7?format=csv&x=1' },
      },
      userId: 'user-1',
      requestId: 'req-1',
    });
    const row = await sentRecord(h, deliveryId);
    const mail = messageFor(sink, deliveryId);
    assert.ok(mail, 'the message arrived');
    const { parsed } = mail;
    assert.equal(parsed.from?.text, MAIL_FROM.replace('Groundwork', '"Groundwork"'));
    assert.deepEqual(mail.envelope, { from: 'no-reply@example.test', to: ['ada@example.com'] });
    assert.equal(parsed.subject, 'Your export is ready');
    assert.equal(parsed.messageId, `<${deliveryId}@example.test>`);
    const link = `${PUBLIC_URL}/exports/7?format=csv&x=1`;
    assert.match(
      parsed.text ?? '',
      /^Your export is ready\n\nIt has 42 rows\.\n\nIt stays for a week\./,
    );
    assert.ok(parsed.text?.includes(`Download: ${link}`), parsed.text);
    const html = String(parsed.html);
    assert.match(html, /<h1[^>]*>Your export is ready<\/h1>/);
    // Every href is the link, HTML-escaped (`&` and `=` as entities).
    const hrefs = [...html.matchAll(/href="([^"]*)"/g)].map((m) => decodeEntities(m[1] ?? ''));
    assert.deepEqual(hrefs, [link, link]);
    assert.equal(html.includes(`href="${link}"`), false, 'the raw link is escaped in the HTML');
    assert.match(html, /<html lang="en">/);
    assert.equal(row.attempts, 1);
    assert.equal(row.message_id, `<${deliveryId}@example.test>`);
    assert.equal(row.job_id, jobId);
    assert.equal(row.user_id, 'user-1');
    assert.equal(row.last_error, null);
    assert.ok(row.sent_at instanceof Date);
    assert.equal(row.vars, null, 'variables (links, tokens) are dropped once sent');
    const metrics = await h.metrics.metrics();
    assert.match(metrics, /mail_messages_total\{template="notification",outcome="sent"\} 1/);
  });

  test('the recipient locale picks the version: de-AT gets de, fr falls back to en', async () => {
    const vars = { title: 'Hallo', paragraphs: ['Text.'], action: { label: 'Los', path: '/x' } };
    const de = await h.mail.send({
      template: 'notification',
      to: 'de@example.com',
      locale: 'de-AT',
      vars,
    });
    const fr = await h.mail.send({
      template: 'notification',
      to: 'fr@example.com',
      locale: 'fr',
      vars,
    });
    await sentRecord(h, de.deliveryId);
    await sentRecord(h, fr.deliveryId);
    assert.match(String(messageFor(sink, de.deliveryId)?.parsed.html), /Falls die Schaltfläche/);
    assert.match(String(messageFor(sink, de.deliveryId)?.parsed.html), /<html lang="de">/);
    assert.match(
      String(messageFor(sink, fr.deliveryId)?.parsed.html),
      /If the button does not work/,
    );
    const rows = await h.deliveries();
    assert.equal(rows.find((r) => r.id === de.deliveryId)?.locale, 'de');
    assert.equal(rows.find((r) => r.id === fr.deliveryId)?.locale, 'en');
  });

  test('variables are escaped in the HTML part and left as written in the text part', async () => {
    const evil = '<script>alert("x")</script> & <b>bold</b>';
    const { deliveryId } = await h.mail.send({
      template: notificationTemplate,
      to: 'escape@example.com',
      vars: { title: 'Escaping', paragraphs: [evil] },
    });
    await sentRecord(h, deliveryId);
    const mail = messageFor(sink, deliveryId);
    const html = String(mail?.parsed.html);
    assert.equal(html.includes('<script>'), false, html);
    assert.equal(html.includes('<b>bold'), false, html);
    assert.ok(
      html.includes(
        '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;',
      ),
      html,
    );
    assert.ok(mail?.parsed.text?.includes(evil));
  });

  test('CR/LF in a subject variable cannot add a header: one subject line, no Bcc, one recipient', async () => {
    const title = 'Hello\r\nBcc: victim@example.org\r\nX-Injected: yes\n\nbody?';
    const { deliveryId } = await h.mail.send({
      template: notificationTemplate,
      to: 'target@example.com',
      vars: { title, paragraphs: ['Hi.'] },
    });
    await sentRecord(h, deliveryId);
    const mail = messageFor(sink, deliveryId);
    assert.ok(mail);
    assert.equal(mail.parsed.subject, 'Hello Bcc: victim@example.org X-Injected: yes body?');
    assert.deepEqual(mail.envelope.to, ['target@example.com']);
    assert.equal(mail.parsed.bcc, undefined);
    assert.equal(headerNames(mail).includes('x-injected'), false);
    assert.equal(headerNames(mail).includes('bcc'), false);
    // The raw header block carries exactly one Subject line.
    const head = mail.raw.split(/\r\n\r\n/)[0] ?? '';
    assert.equal(head.match(/^Subject:/gim)?.length, 1);
    assert.equal(/^X-Injected:/im.test(head), false);
  });

  test('a recipient with CR/LF, a list or a display name is refused with 422 before anything is stored', async () => {
    const before = { rows: (await h.deliveries()).length, jobs: await h.jobCount() };
    const attempts = [
      'user@example.com\r\nBcc: victim@example.org',
      'user@example.com\nX-Injected: yes',
      'user@example.com\r',
      'user@example.com, other@example.org',
      'Name <user@example.com>',
      'user@example.com;other@example.org',
      'no-at-sign',
      '@example.com',
      'user@',
      'user@exa mple.com',
      `${'a'.repeat(250)}@example.com`,
    ];
    for (const email of attempts) {
      const res = await h.app.inject({
        method: 'POST',
        url: '/api/v1/test-mail/verify',
        payload: { email, name: 'Ada' },
      });
      const body = assertProblem(res, 422, 'MAIL_MESSAGE_INVALID');
      assert.deepEqual(
        body.errors?.map((e) => e.path),
        ['/to'],
        email,
      );
    }
    // Called directly, the same refusal is an HttpError.
    await assert.rejects(
      h.mail.send({
        template: notificationTemplate,
        to: 'a@example.com\r\nBcc: b@example.org',
        vars: { title: 'x', paragraphs: ['y'] },
      }),
      (error: unknown) => error instanceof HttpError && error.code === 'MAIL_MESSAGE_INVALID',
    );
    assert.equal((await h.deliveries()).length, before.rows, 'no delivery record');
    assert.equal(await h.jobCount(), before.jobs, 'no job');
  });

  test('variables that fail the template schema are refused with 422 naming each field', async () => {
    const before = (await h.deliveries()).length;
    const error = await h.mail
      .send({
        template: notificationTemplate,
        to: 'ok@example.com',
        vars: { title: '', paragraphs: [], action: { label: 'x', path: 'https://evil.example' } },
      })
      .then(
        () => null,
        (e: unknown) => e,
      );
    assert.ok(error instanceof HttpError);
    assert.equal(error.status, 422);
    const paths = error.errors?.map((e) => e.path) ?? [];
    assert.ok(paths.includes('/vars/title'), paths.join());
    assert.ok(paths.includes('/vars/paragraphs'), paths.join());
    assert.ok(paths.includes('/vars/action/path'), paths.join());
    assert.equal((await h.deliveries()).length, before);
  });

  test('the 4th verification mail within the hour is 429 with Retry-After; nothing is enqueued', async () => {
    const send = (email: string) =>
      h.app.inject({
        method: 'POST',
        url: '/api/v1/test-mail/verify',
        payload: { email, name: 'Ada' },
      });
    for (let i = 0; i < 3; i++) assert.equal((await send('limit@example.com')).statusCode, 202);
    const jobsBefore = await h.jobCount();
    const rowsBefore = (await h.deliveries()).length;
    // The address is compared case-insensitively.
    const res = await send('LIMIT@Example.com');
    const body = assertProblem(res, 429, 'RATE_LIMITED');
    assert.equal(body.detail.includes('limit@'), false, 'the detail does not echo the address');
    const retryAfter = Number(res.headers['retry-after']);
    assert.ok(retryAfter > 3_500 && retryAfter <= 3_600, String(retryAfter));
    assert.equal(await h.jobCount(), jobsBefore);
    assert.equal((await h.deliveries()).length, rowsBefore);
    // Another address is not limited by this one.
    assert.equal((await send('other-limit@example.com')).statusCode, 202);
    const metrics = await h.metrics.metrics();
    assert.match(metrics, /mail_messages_total\{template="test.verify",outcome="limited"\} 1/);
  });

  test('concurrent sends cannot pass the limit: 10 at once to one address, exactly 3 are queued', async () => {
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, () =>
        h.mail.send({
          template: 'test.verify',
          to: 'race@example.com',
          vars: { name: 'R', token: 'abcdefgh12' },
        }),
      ),
    );
    const queued = results.filter((r) => r.status === 'fulfilled');
    const limited = results.filter(
      (r) => r.status === 'rejected' && r.reason instanceof MailLimitedError,
    );
    assert.equal(queued.length, 3);
    assert.equal(limited.length, 7);
    const rows = (await h.deliveries()).filter((r) => r.recipient === 'race@example.com');
    assert.equal(rows.length, 3);
  });

  test('a per-user limit counts the user’s sends whatever the recipients', async () => {
    const invite = (email: string) =>
      h.app.inject({
        method: 'POST',
        url: '/api/v1/test-mail/invite',
        headers: { 'x-test-user': 'inviter-1' },
        payload: { email },
      });
    assert.equal((await invite('a1@example.com')).statusCode, 202);
    assert.equal((await invite('a2@example.com')).statusCode, 202);
    const res = await invite('a3@example.com');
    assertProblem(res, 429, 'RATE_LIMITED');
    assert.ok(Number(res.headers['retry-after']) > 500);
    // Another user is not limited by the first one's sends.
    const other = await h.app.inject({
      method: 'POST',
      url: '/api/v1/test-mail/invite',
      headers: { 'x-test-user': 'inviter-2' },
      payload: { email: 'a3@example.com' },
    });
    assert.equal(other.statusCode, 202);
  });

  test('a send inside a transaction that rolls back leaves no record, no job and no message', async () => {
    const jobsBefore = await h.jobCount();
    const rowsBefore = (await h.deliveries()).length;
    await assert.rejects(
      withTransaction(h.tdb.database.db, async (trx) => {
        await h.mail.send(
          {
            template: notificationTemplate,
            to: 'rollback@example.com',
            vars: { title: 'Never', paragraphs: ['x'] },
          },
          { trx },
        );
        throw new Error('the unit of work fails');
      }),
      /the unit of work fails/,
    );
    assert.equal(await h.jobCount(), jobsBefore);
    assert.equal((await h.deliveries()).length, rowsBefore);
    await sleep(1_000);
    assert.equal(
      sink.received.some((m) => m.envelope.to.includes('rollback@example.com')),
      false,
    );
  });

  test('the SMTP password never reaches the logs', () => {
    assert.equal(h.logs.text.includes(PASSWORD), false);
    assert.equal(h.logs.text.includes(base64(`\u0000${AUTH.user}\u0000${PASSWORD}`)), false);
  });
});

describe('SMTP server down at first', async () => {
  let sink: SmtpSink;
  let h: MailHarness;

  before(async () => {
    sink = new SmtpSink(await freePort());
    h = await startMailHarness({ smtpUrl: sink.url(), retry: { retries: 8 } });
  });
  after(async () => {
    await h.close();
    await sink.stop();
  });

  test('the job retries with backoff and the message arrives once when the server comes up', async () => {
    const { deliveryId } = await h.mail.send({
      template: notificationTemplate,
      to: 'patient@example.com',
      vars: { title: 'Eventually', paragraphs: ['Here.'] },
    });
    const failing = await eventually('two failed attempts', async () => {
      const row = (await h.deliveries())[0];
      return row && row.attempts >= 2 && row;
    });
    assert.equal(failing.status, 'queued');
    assert.match(failing.last_error ?? '', /ECONNREFUSED|ESOCKET|ECONNECTION/);
    assert.equal(sink.received.length, 0);

    await sink.start();
    const [mail] = await sink.waitFor(1, 20_000);
    assert.equal(mail?.parsed.subject, 'Eventually');
    const row = await sentRecord(h, deliveryId);
    assert.ok(row.attempts > 1, String(row.attempts));
    assert.equal(row.last_error, null);
    // Exactly once: no further attempt sends it again.
    await sleep(2_500);
    assert.equal(sink.received.length, 1);
    assert.equal((await h.deliveries())[0]?.attempts, row.attempts);
    const metrics = await h.metrics.metrics();
    assert.match(metrics, /mail_messages_total\{template="notification",outcome="retried"\} [1-9]/);
    assert.match(metrics, /mail_messages_total\{template="notification",outcome="sent"\} 1/);
    assert.ok(
      h.logs.lines.some(
        (l) => l.msg === 'mail not sent: will retry' && l.deliveryId === deliveryId,
      ),
    );
  });
});

describe('a message that cannot be sent', async () => {
  let sink: SmtpSink;
  let h: MailHarness;
  const WRONG = 'Wr0ng-Passw0rd-zq';

  before(async () => {
    sink = new SmtpSink(await freePort(), { auth: AUTH });
    await sink.start();
    // The server refuses these credentials on every attempt.
    h = await startMailHarness({ smtpUrl: sink.url(WRONG), retry: { retries: 1 } });
  });
  after(async () => {
    await h.close();
    await sink.stop();
  });

  test('fails after its last retry: status failed, attempts counted, the error kept without the password', async () => {
    const { deliveryId, jobId } = await h.mail.send({
      template: notificationTemplate,
      to: 'nobody@example.com',
      vars: { title: 'Lost', paragraphs: ['x'] },
    });
    const row = await eventually('the delivery failed', async () => {
      const r = (await h.deliveries()).find((d) => d.id === deliveryId);
      return r?.status === 'failed' && r;
    });
    assert.equal(row.attempts, 2);
    assert.match(row.last_error ?? '', /EAUTH/);
    assert.notEqual(row.vars, null, 'kept for a replay of the dead letter');
    assert.equal(sink.received.length, 0);
    for (const secret of [
      WRONG,
      encodeURIComponent(WRONG),
      base64(`\u0000${AUTH.user}\u0000${WRONG}`),
    ]) {
      assert.equal(h.logs.text.includes(secret), false, 'no password in the logs');
      assert.equal((row.last_error ?? '').includes(secret), false, 'no password in the record');
    }
    assert.ok(
      h.logs.lines.some(
        (l) => l.msg === 'mail not sent: no retry left' && l.deliveryId === deliveryId,
      ),
    );
    const dead = await eventually('the dead letter', async () => {
      const { rows } = await h.tdb.database.pool.query<{ source_id: string }>(
        `select source_id from pgboss.job where name = 'platform.mail.send__dead'`,
      );
      return rows[0];
    });
    assert.equal(dead.source_id, jobId);
    const metrics = await h.metrics.metrics();
    assert.match(metrics, /mail_messages_total\{template="notification",outcome="failed"\} 1/);
  });
});
