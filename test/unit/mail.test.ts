import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { describe, test } from 'node:test';
import { Type } from 'typebox';
import {
  defineMailTemplate,
  notificationTemplate,
  recipientErrors,
  renderMail,
  singleLine,
} from '../../src/platform/mail/index.ts';

const parts = { subject: 'Hi {{name}}', html: '<p>{{name}}</p>', text: '{{name}}' };
const spec = {
  name: 'unit.hello',
  description: 'Unit test template.',
  vars: Type.Object({ name: Type.String({ maxLength: 50 }) }),
  sample: { name: 'Ada' },
  locales: { en: parts },
};

describe('mail templates', () => {
  test('a broken template fails at definition, not in a worker', () => {
    assert.throws(() => defineMailTemplate({ ...spec, name: 'Bad Name' }), /name must be/);
    assert.throws(() => defineMailTemplate({ ...spec, locales: {} }), /at least one locale/);
    assert.throws(
      () => defineMailTemplate({ ...spec, locales: { english: parts } }),
      /locale english/,
    );
    assert.throws(
      () => defineMailTemplate({ ...spec, locales: { en: { ...parts, subject: 'a\nb' } } }),
      /subject must be one line/,
    );
    assert.throws(
      () => defineMailTemplate({ ...spec, sample: { name: 'x'.repeat(51) } }),
      /sample does not match/,
    );
    assert.throws(
      () => defineMailTemplate({ ...spec, locales: { en: { ...parts, html: '<p>{{nmae}}</p>' } } }),
      /do not render the sample/,
    );
    assert.throws(
      () => defineMailTemplate({ ...spec, locales: { en: { ...parts, html: '{{#if}}' } } }),
      /do not render the sample/,
    );
    assert.throws(
      () =>
        defineMailTemplate({
          ...spec,
          locales: { en: { ...parts, html: '{{lookup this "x"}}{{unknownHelper name}}' } },
        }),
      /do not render the sample/,
    );
    assert.throws(
      () =>
        defineMailTemplate({ ...spec, limits: { perRecipient: { max: 0, windowSeconds: 60 } } }),
      /max must be/,
    );
  });

  test('HTML parts escape variables; subject and text do not, and the subject is one line', () => {
    const t = defineMailTemplate(spec);
    const out = renderMail(t, 'en', { name: '<i>\r\nBcc: x@y.z</i>' }, 'https://a.test');
    assert.equal(out.subject, 'Hi <i> Bcc: x@y.z</i>');
    assert.match(out.html, /<p>&lt;i&gt;\r\nBcc: x@y.z&lt;\/i&gt;<\/p>/);
    assert.equal(out.text, '<i>\nBcc: x@y.z</i>\n');
  });

  test('the url helper makes links on PUBLIC_URL from a path only', () => {
    const t = defineMailTemplate({
      ...spec,
      name: 'unit.link',
      vars: Type.Object({ name: Type.String(), path: Type.String() }),
      sample: { name: 'a', path: '/ok' },
      locales: { en: { ...parts, text: '{{url path}}' } },
    });
    assert.equal(
      renderMail(t, 'en', { name: 'a', path: '/x?y=1' }, 'https://a.test/base').text,
      'https://a.test/base/x?y=1\n',
    );
    for (const path of [
      '//evil.test/x',
      'https://evil.test',
      'javascript:alert(1)',
      '/a b',
      '/a\\b',
    ]) {
      assert.throws(
        () => renderMail(t, 'en', { name: 'a', path }, 'https://a.test'),
        /url: expects a path/,
        path,
      );
    }
  });

  test('singleLine collapses control characters and Unicode line separators, and caps the length', () => {
    assert.equal(singleLine('a\r\nb\tc\u2028d\u0000e\u0085f'), 'a b c d e f');
    assert.equal(singleLine('x'.repeat(300)).length, 250);
  });

  test('templates are TypeScript modules, so the build (tsc) carries them to dist/', () => {
    const files = readdirSync(new URL('../../src/platform/mail/', import.meta.url), {
      recursive: true,
      withFileTypes: true,
    }).filter((f) => f.isFile());
    assert.ok(files.some((f) => f.name === 'notification.ts'));
    assert.deepEqual(
      files.filter((f) => !f.name.endsWith('.ts')).map((f) => f.name),
      [],
    );
  });

  test('the notification template has en and de and renders its sample', () => {
    assert.deepEqual([...notificationTemplate.locales].sort(), ['de', 'en']);
    const out = renderMail(
      notificationTemplate,
      'de',
      notificationTemplate.sample,
      'https://a.test',
    );
    assert.equal(out.subject, 'Your export is ready');
    assert.match(out.html, /<html lang="de">/);
  });
});

describe('recipients', () => {
  test('one plain address is accepted', () => {
    for (const ok of [
      'a@example.com',
      'first.last+tag@sub.example.co.uk',
      'user@localhost',
      'zoë@bücher.example',
    ])
      assert.deepEqual(recipientErrors(ok), [], ok);
  });

  test('line breaks, lists, display names and oversized addresses are refused', () => {
    for (const bad of [
      'a@example.com\r\nBcc: b@example.com',
      'a@example.com\n',
      'a@exa\u0000mple.com',
      'a@example.com, b@example.com',
      'a@example.com;b@example.com',
      'A <a@example.com>',
      '"a"@example.com',
      'a@b@example.com',
      'a@-example.com',
      'a@example..com',
      '',
      ' a@example.com',
      `${'a'.repeat(65)}@example.com`,
      `a@${'b'.repeat(250)}.com`,
    ]) {
      assert.equal(recipientErrors(bad).length, 1, JSON.stringify(bad));
    }
    assert.deepEqual(recipientErrors(42), [{ path: '/to', message: 'must be a string' }]);
  });
});
