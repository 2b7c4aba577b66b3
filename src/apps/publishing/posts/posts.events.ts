import { Type } from 'typebox';
import { defineEvent } from '../../../platform/events/index.ts';
import { defineMailTemplate } from '../../../platform/mail/index.ts';
import { PLATFORM_IDS, PUBLISH_ERROR_CODES } from '../platforms/types.ts';

/** Holders of `publishing:admin` see every publishing event; the owner sees their own. */
export const PUBLISHING_ADMIN = 'publishing:admin';
const visibility = { permission: PUBLISHING_ADMIN, ownerVisible: true };
const Platform = Type.Enum([...PLATFORM_IDS]);
const ids = {
  postId: Type.String({ format: 'uuid' }),
  targetId: Type.String({ format: 'uuid' }),
  accountId: Type.String({ format: 'uuid' }),
  platform: Platform,
};
const example = {
  postId: '0190a5c4-7b7e-7000-8000-0000000000a1',
  targetId: '0190a5c4-7b7e-7000-8000-0000000000b2',
  accountId: '0190a5c4-7b7e-7000-8000-0000000000c3',
  platform: 'instagram' as const,
};

export const postScheduled = defineEvent({
  type: 'publishing.post.scheduled',
  description: 'A post was scheduled (or rescheduled): one event per target, with its time.',
  payload: Type.Object(
    { ...ids, scheduledAt: Type.String({ format: 'date-time' }) },
    { additionalProperties: false },
  ),
  example: { ...example, scheduledAt: '2027-03-28T07:00:00.000Z' },
  visibility,
});

export const postPublished = defineEvent({
  type: 'publishing.post.published',
  description: 'A target was published on its platform (exactly once): its post id and URL there.',
  payload: Type.Object(
    {
      ...ids,
      externalId: Type.String(),
      url: Type.String(),
      publishedAt: Type.String({ format: 'date-time' }),
    },
    { additionalProperties: false },
  ),
  example: {
    ...example,
    externalId: '17895695668004550',
    url: 'https://www.instagram.com/p/abc/',
    publishedAt: '2027-03-28T07:00:01.200Z',
  },
  visibility,
});

export const postFailed = defineEvent({
  type: 'publishing.post.failed',
  description:
    'A target failed for good (or was paused: `ACCOUNT_REAUTH_REQUIRED`): the typed error and what the owner can do.',
  payload: Type.Object(
    {
      ...ids,
      code: Type.Enum([...PUBLISH_ERROR_CODES]),
      message: Type.String(),
      retryable: Type.Boolean(),
      action: Type.String(),
      attempts: Type.Integer({ minimum: 0 }),
    },
    { additionalProperties: false },
  ),
  example: {
    ...example,
    code: 'MEDIA_REJECTED',
    message: 'The image’s aspect ratio is outside 0.8 to 1.91.',
    retryable: false,
    action: 'edit_post',
    attempts: 1,
  },
  visibility,
});

export const publishFailedTemplate = defineMailTemplate({
  name: 'publishing.post-failed',
  description: 'To a post’s owner when a target failed in a way only they can fix.',
  vars: Type.Object({
    username: Type.String(),
    platform: Type.String(),
    account: Type.String(),
    reason: Type.String(),
    action: Type.String(),
    scheduledAt: Type.String(),
  }),
  sample: {
    username: 'ada',
    platform: 'Instagram',
    account: '@ada',
    reason: 'The image’s aspect ratio is outside 0.8 to 1.91.',
    action: 'Edit the post, then retry it.',
    scheduledAt: '2027-03-28 09:00 (Europe/Berlin)',
  },
  limits: { perUser: { max: 20, windowSeconds: 3600 } },
  locales: {
    en: {
      subject: 'Your post to {{platform}} was not published',
      html: '<p>Hello {{username}},</p>\n<p>Your post to {{platform}} ({{account}}) scheduled for {{scheduledAt}} was not published: {{reason}}</p>\n<p>{{action}}</p>',
      text: 'Hello {{username}},\n\nYour post to {{platform}} ({{account}}) scheduled for {{scheduledAt}} was not published: {{reason}}\n\n{{action}}',
    },
  },
});
