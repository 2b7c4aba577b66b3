import { Type } from 'typebox';
import { defineMailTemplate } from '../mail/index.ts';

/** To an endpoint's owner when deliveries disabled it (continuous failure, or 410 Gone). */
export const endpointDisabledTemplate = defineMailTemplate({
  name: 'webhooks.endpoint-disabled',
  description:
    'Tells the owner of a webhook endpoint that it was disabled: its deliveries failed continuously for `WEBHOOKS_DISABLE_AFTER`, or it answered 410 Gone.',
  vars: Type.Object({
    endpointUrl: Type.String({ maxLength: 2048 }),
    endpointId: Type.String(),
    reason: Type.String({ maxLength: 500 }),
  }),
  sample: {
    endpointUrl: 'https://hooks.example.com/groundwork',
    endpointId: '01900000-0000-7000-8000-000000000000',
    reason: 'its deliveries failed continuously for 5 days',
  },
  locales: {
    en: {
      subject: 'Webhook endpoint disabled',
      html: `<p style="margin:0 0 16px;">Your webhook endpoint <code>{{endpointUrl}}</code> was disabled: {{reason}}.</p>
<p style="margin:0 0 16px;">No further events are sent to it. Fix the receiver, enable the endpoint again (<code>PATCH /api/v1/webhooks/endpoints/{{endpointId}}</code> with <code>{"enabled": true}</code>) and re-deliver what it missed with <code>POST /api/v1/webhooks/endpoints/{{endpointId}}/recover</code>.</p>`,
      text: `Your webhook endpoint {{endpointUrl}} was disabled: {{reason}}.

No further events are sent to it. Fix the receiver, enable the endpoint again (PATCH /api/v1/webhooks/endpoints/{{endpointId}} with {"enabled": true}) and re-deliver what it missed with POST /api/v1/webhooks/endpoints/{{endpointId}}/recover.
`,
    },
  },
});
