import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { JobQueue } from '../../src/platform/jobs/index.ts';
import { Mailer, notificationTemplate } from '../../src/platform/mail/index.ts';
import { createLogger, createMetricsRegistry } from '../../src/platform/observability/index.ts';
import { buildTestApp, testConfig } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { PUBLIC_URL, eventually, startMailHarness, type MailHarness } from '../helpers/mail.ts';
import { mailTestApp } from '../helpers/mail-app.ts';
import { assertProblem } from '../helpers/problem.ts';

const MAIL_CSP =
  "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

interface DevMessage {
  id: string;
  deliveryId: string;
  template: string;
  locale: string;
  from: string;
  to: string;
  subject: string;
  text?: string;
  html?: string;
}

describe('development: the dev mailbox and previews', async () => {
  let h: MailHarness;
  before(async () => {
    // No SMTP_URL in development: messages go to the development mailbox.
    h = await startMailHarness({ overrides: { APP_ENV: 'development' }, apps: [mailTestApp] });
  });
  after(() => h.close());

  test('a sent message shows in GET /dev/mailbox (newest first) and in full at /dev/mailbox/:id', async () => {
    const first = await h.mail.send({
      template: notificationTemplate,
      to: 'first@example.com',
      vars: { title: 'First', paragraphs: ['One.'], action: { label: 'Open', path: '/things/1' } },
    });
    const second = await h.mail.send({
      template: notificationTemplate,
      to: 'second@example.com',
      locale: 'de',
      vars: { title: 'Zweite', paragraphs: ['Zwei.'] },
    });
    const items = await eventually('both messages in the mailbox', async () => {
      const res = await h.app.inject({ method: 'GET', url: '/dev/mailbox' });
      assert.equal(res.statusCode, 200);
      const body = res.json<{ items: DevMessage[] }>();
      return body.items.length === 2 && body.items;
    });
    assert.deepEqual(
      items.map((m) => [m.deliveryId, m.to, m.subject, m.locale]),
      [
        [second.deliveryId, 'second@example.com', 'Zweite', 'de'],
        [first.deliveryId, 'first@example.com', 'First', 'en'],
      ],
    );
    assert.equal(items[0]?.text, undefined, 'the list carries no bodies');

    const filtered = await h.app.inject({
      method: 'GET',
      url: '/dev/mailbox?to=FIRST@example.com',
    });
    assert.deepEqual(
      filtered.json<{ items: DevMessage[] }>().items.map((m) => m.deliveryId),
      [first.deliveryId],
    );

    const one = await h.app.inject({ method: 'GET', url: `/dev/mailbox/${first.deliveryId}` });
    assert.equal(one.statusCode, 200);
    const message = one.json<DevMessage>();
    assert.match(message.text ?? '', new RegExp(`Open: ${PUBLIC_URL}/things/1`));
    assert.match(message.html ?? '', /<h1[^>]*>First<\/h1>/);

    const page = await h.app.inject({
      method: 'GET',
      url: `/dev/mailbox/${first.deliveryId}/html`,
    });
    assert.equal(page.statusCode, 200);
    assert.equal(page.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(page.headers['content-security-policy'], MAIL_CSP);
    assert.equal(page.body, message.html);

    const rows = await h.deliveries();
    assert.ok(rows.every((r) => r.status === 'sent'));
  });

  test('an unknown message id is a 404 problem; a bad query is 422', async () => {
    assertProblem(
      await h.app.inject({
        method: 'GET',
        url: '/dev/mailbox/0193b6f2-3c4e-7a1b-9f00-2a1d3e4f5a6b',
      }),
      404,
      'MAIL_DEV_MESSAGE_NOT_FOUND',
    );
    assertProblem(
      await h.app.inject({ method: 'GET', url: '/dev/mailbox/not-a-uuid/html' }),
      404,
      'MAIL_DEV_MESSAGE_NOT_FOUND',
    );
    assertProblem(
      await h.app.inject({ method: 'GET', url: '/dev/mailbox?limit=100000' }),
      422,
      'VALIDATION_FAILED',
    );
  });

  test('GET /dev/mail/preview/:template renders the sample as HTML, text or JSON', async () => {
    const html = await h.app.inject({ method: 'GET', url: '/dev/mail/preview/notification' });
    assert.equal(html.statusCode, 200);
    assert.equal(html.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(html.headers['content-language'], 'en');
    assert.equal(html.headers['content-security-policy'], MAIL_CSP);
    assert.match(html.body, /<title>Your export is ready<\/title>/);
    assert.match(html.body, new RegExp(`href="${PUBLIC_URL}/exports/`));

    const text = await h.app.inject({
      method: 'GET',
      url: '/dev/mail/preview/notification?format=text',
    });
    assert.equal(text.headers['content-type'], 'text/plain; charset=utf-8');
    assert.match(text.body, /^Your export is ready\n/);

    const json = await h.app.inject({
      method: 'GET',
      url: '/dev/mail/preview/notification?format=json&locale=de-CH',
    });
    assert.equal(json.statusCode, 200);
    const body = json.json<{
      template: string;
      locale: string;
      subject: string;
      html: string;
      text: string;
    }>();
    assert.equal(body.template, 'notification');
    assert.equal(body.locale, 'de');
    assert.equal(body.subject, 'Your export is ready');
    assert.match(body.html, /Falls die Schaltfläche/);

    // An app's template previews the same way.
    const verify = await h.app.inject({
      method: 'GET',
      url: '/dev/mail/preview/test.verify?format=text',
    });
    assert.match(verify.body, /\/verify\?token=sample-token-123/);

    // An unknown locale falls back to the default one.
    const fallback = await h.app.inject({
      method: 'GET',
      url: '/dev/mail/preview/notification?locale=fr',
    });
    assert.equal(fallback.headers['content-language'], 'en');
  });

  test('preview: an unknown template is a 404 problem; a bad locale or format is 422', async () => {
    for (const name of ['nope', 'notification.missing', '..%2F..%2Fetc%2Fpasswd', 'NOTIFICATION']) {
      const res = await h.app.inject({ method: 'GET', url: `/dev/mail/preview/${name}` });
      const body = assertProblem(res, 404, 'MAIL_TEMPLATE_NOT_FOUND');
      assert.equal(body.detail, 'No mail template has this name.');
    }
    // A NUL is refused before any lookup, like everywhere (issue 12).
    assertProblem(
      await h.app.inject({ method: 'GET', url: '/dev/mail/preview/%00' }),
      422,
      'VALIDATION_FAILED',
    );
    assertProblem(
      await h.app.inject({ method: 'GET', url: `/dev/mail/preview/${'x'.repeat(101)}` }),
      422,
      'VALIDATION_FAILED',
    );
    assertProblem(
      await h.app.inject({
        method: 'GET',
        url: '/dev/mail/preview/notification?locale=en%0D%0AX:1',
      }),
      422,
      'VALIDATION_FAILED',
    );
    assertProblem(
      await h.app.inject({ method: 'GET', url: '/dev/mail/preview/notification?format=pdf' }),
      422,
      'VALIDATION_FAILED',
    );
  });

  test('the development routes are in the OpenAPI document under their own tag', async () => {
    const doc = (await h.app.inject({ method: 'GET', url: '/openapi.json' })).json<{
      tags: { name: string }[];
      paths: Record<string, unknown>;
    }>();
    assert.ok(doc.tags.some((t) => t.name === 'development'));
    assert.ok(doc.paths['/dev/mailbox']);
    assert.ok(doc.paths['/dev/mail/preview/{template}']);
  });
});

describe('outside development the dev routes do not exist', async () => {
  let tdb: TestDatabase;
  before(async () => {
    tdb = await createTestDatabase();
  });
  after(() => tdb.drop());

  const paths = ['/dev/mailbox', '/dev/mail/preview/notification', '/dev/mail/preview/nope'];

  const environments: Record<string, string>[] = [
    { APP_ENV: 'test' },
    {
      APP_ENV: 'production',
      APP_SECRET: 'k3J9x!qPz7Lw2Vb8Nc4Rt6Ym1Hs5Dg0Fa',
      SMTP_URL: 'smtp://user:pw@127.0.0.1:2525',
      MAIL_FROM: 'Example <no-reply@example.com>',
      PUBLIC_URL: 'https://api.example.com',
    },
  ];
  for (const env of environments) {
    test(`APP_ENV=${env.APP_ENV}: 404 ROUTE_NOT_FOUND`, async () => {
      const overrides = { ...env, DATABASE_URL: tdb.url };
      const config = testConfig(overrides);
      assert.equal(config.env, env.APP_ENV);
      const logger = createLogger({ level: 'silent' });
      const jobs = new JobQueue({
        config,
        database: tdb.database,
        logger,
        definitions: [],
        work: false,
      });
      const mail = new Mailer({ config, database: tdb.database, jobs, logger });
      const { app } = await buildTestApp(overrides, {
        database: tdb.database,
        jobs,
        mail,
        metrics: createMetricsRegistry(),
      });
      try {
        assert.equal(app.platform.mail, mail);
        for (const url of paths) {
          assertProblem(
            await app.inject({ method: 'GET', url, headers: { host: 'localhost' } }),
            404,
            'ROUTE_NOT_FOUND',
          );
        }
      } finally {
        await app.close();
        await jobs.stop(1_000);
        await mail.close();
      }
    });
  }
});
