import { Type } from 'typebox';
import { defineMailTemplate } from '../template.ts';

const Vars = Type.Object(
  {
    /** Already in the recipient's language: also the subject. */
    title: Type.String({ minLength: 1, maxLength: 200 }),
    paragraphs: Type.Array(Type.String({ minLength: 1, maxLength: 5_000 }), {
      minItems: 1,
      maxItems: 20,
    }),
    action: Type.Optional(
      Type.Object(
        {
          label: Type.String({ minLength: 1, maxLength: 100 }),
          /** A path on `PUBLIC_URL` (`/exports/42`), never another origin. */
          path: Type.String({ pattern: '^/(?!/)[^\\s\\\\]*$', maxLength: 2_000 }),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

const html = (copyLink: string) => `<h1 style="font-size:22px;margin:0 0 16px;">{{title}}</h1>
{{#each paragraphs}}<p style="margin:0 0 16px;">{{this}}</p>
{{/each}}
{{#if action}}<p style="margin:24px 0;"><a href="{{url action.path}}" style="display:inline-block;padding:12px 20px;background:#2563eb;color:#ffffff;text-decoration:none;border-radius:4px;">{{action.label}}</a></p>
<p style="margin:0;font-size:13px;color:#52525b;">${copyLink}<br><a href="{{url action.path}}" style="color:#2563eb;word-break:break-all;">{{url action.path}}</a></p>
{{/if}}`;

const text = `{{title}}

{{#each paragraphs}}{{this}}

{{/each}}
{{#if action}}{{action.label}}: {{url action.path}}
{{/if}}`;

/**
 * The platform's generic message: a title (also the subject), paragraphs and an optional action
 * link on `PUBLIC_URL`. Apps use it for notices that need no template of their own.
 */
export const notificationTemplate = defineMailTemplate({
  name: 'notification',
  description: 'A title, paragraphs and an optional action link.',
  vars: Vars,
  sample: {
    title: 'Your export is ready',
    paragraphs: ['The export you asked for has finished.', 'It stays available for seven days.'],
    action: { label: 'Download the export', path: '/exports/0193b6f2?format=csv' },
  },
  locales: {
    en: {
      subject: '{{title}}',
      html: html('If the button does not work, copy this link into your browser:'),
      text,
    },
    de: {
      subject: '{{title}}',
      html: html(
        'Falls die Schaltfläche nicht funktioniert, kopieren Sie diesen Link in Ihren Browser:',
      ),
      text,
    },
  },
});
