import { defineErrorCodes } from '../../../platform/http/index.ts';

/** The posts routes' answers (the targets' own error codes are `PUBLISH_ERROR_CODES`). */
export const PostCodes = defineErrorCodes('publishing', {
  POST_NOT_FOUND: {
    kind: 'NotFound',
    title: 'Post not found',
    description:
      'No post with this id belongs to the caller (another user’s post answers the same).',
  },
  POST_TARGET_NOT_FOUND: {
    kind: 'NotFound',
    title: 'Target not found',
    description: 'The post has no target with this id.',
  },
  POST_ACCOUNT_UNKNOWN: {
    kind: 'Invalid',
    title: 'Unknown account',
    description:
      'A target names an account the caller has not connected (another user’s account answers the same).',
  },
  POST_ACCOUNT_REAUTH_REQUIRED: {
    kind: 'Invalid',
    title: 'Account needs reconnecting',
    description:
      'A target’s account must be reconnected (`POST /accounts/:id/reconnect`) before a post can be scheduled to it.',
  },
  POST_PLATFORM_DISABLED: {
    kind: 'Invalid',
    title: 'Platform not enabled',
    description: 'A target’s account is on a platform this server does not publish to.',
  },
  POST_MEDIA_UNKNOWN: {
    kind: 'Invalid',
    title: 'Unknown media',
    description:
      'A media file id is not one of the caller’s `publishing.media` uploads (another user’s file answers the same).',
  },
  POST_MEDIA_NOT_READY: {
    kind: 'Invalid',
    title: 'Media not ready',
    description: 'A media file is still processing or failed processing.',
  },
  POST_CONTENT_REJECTED: {
    kind: 'Invalid',
    title: 'Content breaks a platform’s rules',
    description:
      'The post breaks a rule of a target’s platform (text length, media count, type, size, aspect ratio, options). `problems` lists each with its platform, account, `code` (`CONTENT_REJECTED` or `MEDIA_REJECTED`) and `rule`.',
  },
  POST_SCHEDULED_AT_NO_OFFSET: {
    kind: 'Invalid',
    title: 'Scheduled time without an offset',
    description: '`scheduledAt` must be RFC 3339 with `Z` or a `±hh:mm` offset.',
  },
  POST_SCHEDULED_AT_PAST: {
    kind: 'Invalid',
    title: 'Scheduled time in the past',
    description: '`scheduledAt` is not in the future.',
  },
  POST_SCHEDULED_AT_TOO_FAR: {
    kind: 'Invalid',
    title: 'Scheduled too far ahead',
    description: '`scheduledAt` is further ahead than `PUBLISHING_MAX_SCHEDULE_AHEAD`.',
  },
  POST_SCHEDULED_AT_NONEXISTENT: {
    kind: 'Invalid',
    title: 'Nonexistent local time',
    description:
      'The local time of `scheduledAt` does not exist in `timeZone` (skipped by a daylight-saving change).',
  },
  POST_SCHEDULED_AT_OFFSET_MISMATCH: {
    kind: 'Invalid',
    title: 'Offset not the time zone’s',
    description:
      'The offset of `scheduledAt` is not `timeZone`’s offset at that time (send `Z`, or the zone’s offset).',
  },
  POST_TIME_ZONE_INVALID: {
    kind: 'Invalid',
    title: 'Unknown time zone',
    description: '`timeZone` is not an IANA time zone name.',
  },
  POST_NOT_SCHEDULABLE: {
    kind: 'Conflict',
    title: 'Post cannot change now',
    description:
      'The post has a target being published or already published: it can no longer be edited, rescheduled or deleted that way.',
  },
  POST_NOT_SCHEDULED: {
    kind: 'Conflict',
    title: 'Nothing to cancel',
    description: 'The post has no scheduled or paused target.',
  },
  POST_SCHEDULE_MISSING: {
    kind: 'Invalid',
    title: 'No time to schedule for',
    description: 'Scheduling needs `scheduledAt` (in the request or already on the post).',
  },
  POST_TARGET_NOT_RETRYABLE: {
    kind: 'Conflict',
    title: 'Target cannot be retried',
    description: 'Only a failed target can be retried.',
  },
  POST_CALENDAR_RANGE_INVALID: {
    kind: 'Invalid',
    title: 'Bad calendar range',
    description: '`from` must not be after `to`, and the range holds at most 62 days.',
  },
});
