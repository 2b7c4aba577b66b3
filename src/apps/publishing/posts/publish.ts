/**
 * The publishing pipeline: one queue per platform, a delayed job per target (enqueued in the
 * transaction that schedules it), quotas as token buckets, a breaker per platform, retries with
 * backoff and jitter, and exactly once through a claim and the marker lookup.
 *
 * A target's `version` changes on every transition and each job carries the version it was made
 * for: a job for an older state (rescheduled, cancelled, paused) finds the version moved and exits,
 * so replacing a job never needs to reach into the queue.
 */
import { Type } from 'typebox';
import { withTransaction, type AnyDb } from '../../../platform/db/index.ts';
import { parseDuration } from '../../../platform/config/index.ts';
import { lookupFiles, openFile, signedFileUrl } from '../../../platform/files/index.ts';
import { accountContact } from '../../../platform/identity/index.ts';
import { defineJob, type AnyJob, type JobContext } from '../../../platform/jobs/index.ts';
import type { Platform } from '../../../platform/modules/index.ts';
import { createKeyedBreakers, type KeyedBreakers } from '../../../platform/resilience/index.ts';
import {
  PLATFORM_IDS,
  PlatformError,
  type AccountCredentials,
  type PlatformAdapter,
  type PlatformId,
  type PublishedPost,
  type PublishMedia,
} from '../platforms/types.ts';
import { publishingRuntime, type PublishingRuntime } from '../context.ts';
import type { PublishingSettings } from '../settings.ts';
import { postMetrics, type PostMetrics } from './metrics.ts';
import { postFailed, postPublished, postScheduled, publishFailedTemplate } from './posts.events.ts';
import {
  expiredClaims,
  findPostForPublish,
  findTarget,
  postsDb,
  refreshPostStatus,
  setTargetJob,
  transitionTarget,
  type TargetError,
  type TargetRow,
} from './posts.repository.ts';

export const MEDIA_PURPOSE = 'publishing.media';
const PublishPayload = Type.Object({
  targetId: Type.String({ format: 'uuid' }),
  version: Type.Integer({ minimum: 0 }),
});

/** How long a claim holds: the publish timeout plus a margin (a tenth of it, at least 5 s). */
export function leaseMs(settings: PublishingSettings): number {
  const timeout = ms(settings.PUBLISHING_PUBLISH_TIMEOUT);
  return timeout + Math.max(5_000, Math.round(timeout / 10));
}

export const queueOf = (platform: PlatformId) => `publishing.publish-${platform}`;

const ms = (duration: string) => parseDuration(duration) * 1000;

type PublishJob = ReturnType<typeof makePublishJob>;

function makePublishJob(settings: PublishingSettings, platform: PlatformId) {
  const concurrency = {
    instagram: settings.PUBLISHING_INSTAGRAM_CONCURRENCY,
    facebook: settings.PUBLISHING_FACEBOOK_CONCURRENCY,
    youtube: settings.PUBLISHING_YOUTUBE_CONCURRENCY,
  }[platform];
  return defineJob({
    name: queueOf(platform),
    payload: PublishPayload,
    options: {
      // The pipeline retries by itself (backoff by error kind); a handler that throws (the database
      // unreachable) is retried by the queue, and a claim it left behind is settled by the sweep.
      retries: 3,
      backoff: { initialSeconds: 2, maxSeconds: 60 },
      // The claim's lease: a job whose worker died is retried by the queue just after it lapses.
      timeoutSeconds: Math.ceil(leaseMs(settings) / 1000),
      concurrency,
      batchSize: concurrency,
      singletonKey: (p) => `${p.targetId}:${p.version}`,
      keepCompletedSeconds: 86_400,
    },
    handler: async (payload, ctx) => {
      return publishTarget(publishingRuntime(ctx.platform), payload, ctx);
    },
  });
}

export const sweepJob = defineJob({
  name: 'publishing.sweep',
  payload: Type.Object({}),
  options: { retries: 0, timeoutSeconds: 120, cron: { expression: '* * * * *', payload: {} } },
  handler: async (_payload, ctx) => {
    return { settled: await sweepExpiredClaims(publishingRuntime(ctx.platform)) };
  },
});

const jobsBySettings = new WeakMap<PublishingSettings, Map<PlatformId, PublishJob>>();

/** The per-platform publish jobs for these settings (one definition per platform, made once). */
export function publishJobs(settings: PublishingSettings): Map<PlatformId, PublishJob> {
  let jobs = jobsBySettings.get(settings);
  if (!jobs) {
    jobs = new Map(PLATFORM_IDS.map((p) => [p, makePublishJob(settings, p)]));
    jobsBySettings.set(settings, jobs);
  }
  return jobs;
}

export function allPostJobs(settings: PublishingSettings): readonly AnyJob[] {
  return [...publishJobs(settings).values(), sweepJob];
}

const breakersOf = new WeakMap<Platform, KeyedBreakers<unknown>>();

/** The per-platform breakers of this process. */
export function platformBreakers(
  platform: Platform,
  settings: PublishingSettings,
): KeyedBreakers<unknown> {
  let breakers = breakersOf.get(platform);
  if (!breakers) {
    breakers = createKeyedBreakers<unknown>({
      policy: {
        failureThreshold: settings.PUBLISHING_BREAKER_FAILURES,
        halfOpenAfterMs: ms(settings.PUBLISHING_BREAKER_HALF_OPEN_AFTER),
      },
      isFailure: () => false,
      maxKeys: 16,
    });
    breakersOf.set(platform, breakers);
  }
  return breakers;
}

export function metricsOf(rt: PublishingRuntime): PostMetrics {
  return postMetrics(rt.platform, () => platformBreakers(rt.platform, rt.settings));
}

/**
 * Moves `target` (at `version`) to scheduled for `dueAt` and enqueues its job in `trx`: the job
 * exists only if the change commits, and a job for the previous version becomes stale.
 */
export async function enqueueTarget(
  trx: AnyDb,
  platform: Platform,
  settings: PublishingSettings,
  target: { id: string; version: number; platform: PlatformId },
  dueAt: Date,
  changes: Parameters<typeof transitionTarget>[3] = {},
  actor: { userId?: string | null; requestId?: string | null } = {},
): Promise<TargetRow | null> {
  const db = postsDb(trx);
  const moved = await transitionTarget(db, target.id, target.version, {
    ...changes,
    status: 'scheduled',
    dueAt,
    leaseUntil: null,
  });
  if (!moved) return null;
  const job = publishJobs(settings).get(target.platform);
  if (!job) throw new Error(`no publish job for ${target.platform}`);
  const { id } = await platform.jobs.send(
    job,
    { targetId: moved.id, version: moved.version },
    { trx, startAfter: dueAt, userId: actor.userId ?? null, requestId: actor.requestId ?? null },
  );
  await setTargetJob(db, moved.id, moved.version, id);
  return { ...moved, jobId: id };
}

/** Exponential backoff with ±50 % jitter: `initial × 2^(n-1)`, capped. */
export function backoffMs(failures: number, initialMs: number, maxMs: number): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.max(0, failures - 1));
  return Math.round(base * (0.5 + Math.random()));
}

const errorOf = (e: PlatformError): TargetError => ({
  code: e.code,
  message: e.message.slice(0, 1000),
  retryable: e.retryable,
  action: e.action,
  ...(e.platformCode === undefined ? {} : { platformCode: e.platformCode }),
});

/** Anything an adapter throws that is not typed: the call may have gone out, so look it up first. */
function asPlatformError(error: unknown): PlatformError {
  if (error instanceof PlatformError) return error;
  return new PlatformError('OUTCOME_UNKNOWN', 'The platform call failed unexpectedly.', {
    retryable: true,
    action: 'retry_later',
    sent: true,
    cause: error,
  });
}

/** Errors that say the platform is down (counted by its breaker); others are answers. */
const UNAVAILABLE = new Set(['PLATFORM_UNAVAILABLE', 'OUTCOME_UNKNOWN']);

type Outcome = { published: PublishedPost } | { error: PlatformError };

interface Claim {
  target: TargetRow;
  post: NonNullable<Awaited<ReturnType<typeof findPostForPublish>>>;
  adapter: PlatformAdapter;
}

/** One run of a target's job. */
export async function publishTarget(
  rt: PublishingRuntime,
  payload: { targetId: string; version: number },
  ctx: Pick<JobContext, 'signal' | 'log'>,
): Promise<{ outcome: string }> {
  const { platform, settings } = rt;
  const db = postsDb(platform.database.db);
  const metrics = metricsOf(rt);
  const target = await findTarget(db, payload.targetId);
  // The queue's retry of a job whose worker died: its claim, once past the lease, is swept now
  // rather than at the next sweep (the job's timeout is the lease's, so this is when it comes).
  if (
    target?.status === 'publishing' &&
    target.leaseUntil &&
    target.leaseUntil.getTime() < Date.now()
  )
    return { outcome: (await sweepClaim(rt, target)) ? 'swept' : 'stale' };
  if (!target || target.version !== payload.version || target.status !== 'scheduled')
    return { outcome: 'stale' };
  const post = await findPostForPublish(db, target.postId);
  if (!post || post.deleted) {
    await withTransaction(platform.database.db, async (trx) => {
      await transitionTarget(postsDb(trx), target.id, target.version, { status: 'cancelled' });
      await refreshPostStatus(postsDb(trx), [target.postId]);
    });
    return { outcome: 'cancelled' };
  }
  const adapter = rt.adapters.get(target.platform);
  const breakers = platformBreakers(platform, settings);

  // Wait, without spending an attempt, while the platform's breaker is open or a quota is spent.
  const wait = async (delayMs: number, reason: string) => {
    metrics.retries.inc({ platform: target.platform, reason });
    await withTransaction(platform.database.db, async (trx) => {
      await enqueueTarget(trx, platform, settings, target, new Date(Date.now() + delayMs));
    });
    return { outcome: `wait:${reason}` };
  };
  if (adapter && breakers.state(target.platform) === 'open')
    return wait(ms(settings.PUBLISHING_BREAKER_HALF_OPEN_AFTER), 'breaker');
  // A pending lookup asks the platform about a call already made (and already counted): it takes
  // no quota, or a post published before an unknown outcome would wait for the next quota window
  // unrecorded. A lookup that finds nothing sends the target back (below) to take its quota first.
  if (adapter && !target.needsLookup) {
    for (const rule of adapter.quotas) {
      const key = `publishing:quota:${target.platform}:${target.accountId}:${rule.endpoint}`;
      let retryAfterMs = 0;
      try {
        const decision = await rt.platform.rateLimits.take(key, rule.limit, rule.periodMs);
        if (!decision.allowed) retryAfterMs = Math.max(1000, decision.retryAfterSeconds * 1000);
      } catch {
        retryAfterMs = 5_000; // the shared store cannot answer: never guess a quota is free
      }
      if (retryAfterMs > 0) {
        metrics.quotaWaits.inc({ platform: target.platform, endpoint: rule.endpoint });
        return wait(retryAfterMs, 'quota');
      }
    }
  }

  // The claim: from here a crash leaves the target `publishing` until its lease runs out.
  const lease = leaseMs(settings);
  const claimed = await withTransaction(platform.database.db, async (trx) => {
    const row = await transitionTarget(postsDb(trx), target.id, target.version, {
      status: 'publishing',
      attempts: target.attempts + 1,
      leaseUntil: new Date(Date.now() + lease),
    });
    if (row) await refreshPostStatus(postsDb(trx), [row.postId]);
    return row;
  });
  if (!claimed) return { outcome: 'stale' };
  const claim: Claim = { target: claimed, post, adapter: adapter as PlatformAdapter };
  if (!adapter)
    return settle(
      rt,
      claim,
      new PlatformError(
        'PLATFORM_UNAVAILABLE',
        `${target.platform} is not enabled on this server.`,
        {
          retryable: false,
          action: 'none',
        },
      ),
      false,
    );

  const signal = AbortSignal.any([
    ctx.signal,
    AbortSignal.timeout(ms(settings.PUBLISHING_PUBLISH_TIMEOUT)),
  ]);
  let credentials: AccountCredentials;
  try {
    credentials = await rt.accounts.credentials(target.accountId, signal);
  } catch (error) {
    // The accounts half marks the account (and pauses its other targets) itself.
    return settle(rt, claim, asPlatformError(error), false, { attemptMade: false });
  }

  // Exactly once: a call whose outcome is unknown is looked up before anything is sent again.
  if (claimed.needsLookup) {
    try {
      const found = await adapter.findByMarker(credentials, claimed.id, claimed.createdAt, signal);
      if (found) return recordPublished(rt, claim, found, 'found');
      // Attempts spent and the last one not there: failed for good, without another call.
      if (claimed.failures >= settings.PUBLISHING_MAX_ATTEMPTS)
        return settle(rt, claim, storedError(claimed), false, {
          attemptMade: false,
          final: true,
        });
      // Not there: nothing was published. Back to scheduled, due now, the lookup done, so that
      // the next run takes its quota like any send (this run took none).
      if (adapter.quotas.length > 0) {
        const back = await withTransaction(platform.database.db, async (trx) => {
          // This run made no call: it does not count as an attempt.
          const row = await enqueueTarget(trx, platform, settings, claimed, new Date(), {
            needsLookup: false,
            attempts: claimed.attempts - 1,
          });
          if (row) await refreshPostStatus(postsDb(trx), [row.postId]);
          return row;
        });
        return { outcome: back ? 'wait:looked-up' : 'stale' };
      }
    } catch (error) {
      const e = asPlatformError(error);
      // Still unknown: keep the lookup pending, whatever the error says about sending.
      return settle(rt, claim, e.sent ? e : withSent(e), true, { attemptMade: false });
    }
  }

  // Checked again at publish time: the media may be gone, the rules may have changed.
  const media = await mediaAndRules(rt, claim);
  if (!Array.isArray(media)) return settle(rt, claim, media, true, { attemptMade: false });

  const run = await breakers
    .run(target.platform, async (): Promise<Outcome> => {
      try {
        return {
          published: await adapter.publish(
            credentials,
            { marker: claimed.id, text: post.text, media, options: claimed.options },
            signal,
          ),
        };
      } catch (error) {
        const e = asPlatformError(error);
        if (UNAVAILABLE.has(e.code) || e.sent) throw e; // counted by the breaker
        return { error: e };
      }
    })
    .catch((error: unknown) => ({ ran: true as const, value: { error: asPlatformError(error) } }));
  if (!run.ran) {
    // Opened between the check and the call: nothing was sent; give the attempt back.
    metrics.retries.inc({ platform: target.platform, reason: 'breaker' });
    await withTransaction(platform.database.db, async (trx) => {
      await enqueueTarget(
        trx,
        platform,
        settings,
        claimed,
        new Date(Date.now() + Math.max(1000, run.openForMs)),
        {
          attempts: claimed.attempts - 1,
        },
      );
      await refreshPostStatus(postsDb(trx), [claimed.postId]);
    });
    return { outcome: 'wait:breaker' };
  }
  const value = run.value as Outcome;
  if ('published' in value) return recordPublished(rt, claim, value.published, 'published');
  return settle(rt, claim, value.error, true);
}

/** Lookup-only runs allowed after the last attempt when its outcome is unknown. */
const LOOKUP_RUNS = 3;

/** The target's last error, as the platform error it was. */
function storedError(target: TargetRow): PlatformError {
  const e = target.error;
  return new PlatformError(e?.code ?? 'OUTCOME_UNKNOWN', e?.message ?? 'The outcome is unknown.', {
    retryable: e?.retryable ?? true,
    action: e?.action ?? 'retry_later',
    ...(e?.platformCode === undefined ? {} : { platformCode: e.platformCode }),
  });
}

function withSent(e: PlatformError): PlatformError {
  return new PlatformError('OUTCOME_UNKNOWN', `Could not look the post up: ${e.message}`, {
    retryable: true,
    action: 'retry_later',
    sent: true,
    ...(e.retryAfterMs === undefined ? {} : { retryAfterMs: e.retryAfterMs }),
    cause: e,
  });
}

/**
 * The post's media as the adapter gets it, checked again at publish time (still the owner's,
 * still ready) with the platform's rules: one lookup. A problem is a `PlatformError` to settle.
 */
async function mediaAndRules(
  rt: PublishingRuntime,
  claim: Claim,
): Promise<PublishMedia[] | PlatformError> {
  const { post, adapter, target } = claim;
  const files = await lookupFiles(rt.platform.database.db, post.mediaFileIds, {
    purpose: MEDIA_PURPOSE,
    ownerId: post.userId,
  });
  const ready = post.mediaFileIds.map((id) => files.get(id)).filter((f) => f?.status === 'ready');
  if (ready.length !== post.mediaFileIds.length) {
    const missing = post.mediaFileIds.filter((id) => files.get(id)?.status !== 'ready');
    return new PlatformError(
      'MEDIA_REJECTED',
      `Media ${missing.join(', ')} is gone or not ready.`,
      {
        retryable: false,
        action: 'edit_post',
      },
    );
  }
  const media = ready.filter((f) => f !== undefined);
  const problems = adapter.validate({
    text: post.text,
    media: media.map((f) => ({
      contentType: f.contentType,
      size: f.size,
      width: f.width,
      height: f.height,
      durationS: null,
    })),
    options: target.options,
  });
  const first = problems[0];
  if (first)
    return new PlatformError(first.code, `${first.rule}: ${first.message}`, {
      retryable: false,
      action: 'edit_post',
    });
  const ttl = parseDuration(rt.settings.PUBLISHING_MEDIA_URL_TTL);
  return media.map((f) => ({
    fileId: f.id,
    contentType: f.contentType,
    size: f.size,
    width: f.width,
    height: f.height,
    url: () => signedFileUrl(rt.platform, f.id, { expiresInSeconds: ttl }),
    open: async () => (await openFile(rt.platform, f.id)).body,
  }));
}

/** The target is on the platform: record it once (even if the sweep moved it meanwhile). */
async function recordPublished(
  rt: PublishingRuntime,
  claim: Claim,
  found: PublishedPost,
  how: 'published' | 'found',
): Promise<{ outcome: string }> {
  const { platform } = rt;
  const { target, post } = claim;
  const publishedAt = new Date();
  const recorded = await withTransaction(platform.database.db, async (trx) => {
    const db = postsDb(trx);
    const changes = {
      status: 'published' as const,
      publishedAt,
      externalId: found.externalId,
      externalUrl: found.url,
      leaseUntil: null,
      needsLookup: false,
      error: null,
      jobId: null,
    };
    let row = await transitionTarget(db, target.id, target.version, changes);
    if (!row) {
      // Moved since the claim (the sweep took it over): still the truth, unless already recorded.
      const now = await findTarget(db, target.id);
      if (!now || now.status === 'published') return false;
      row = await transitionTarget(db, target.id, now.version, changes);
      if (!row) return false;
    }
    await refreshPostStatus(db, [target.postId]);
    await platform.events.publish(trx, postPublished, {
      data: {
        postId: target.postId,
        targetId: target.id,
        accountId: target.accountId,
        platform: target.platform,
        externalId: found.externalId,
        url: found.url,
        publishedAt: publishedAt.toISOString(),
      },
      subject: { type: 'publishing_post', id: target.postId },
      actorId: null,
      ownerId: post.userId,
    });
    return true;
  });
  if (recorded) {
    const metrics = metricsOf(rt);
    metrics.published.inc({ platform: target.platform });
    if (post.scheduledAt)
      metrics.lag.observe(
        { platform: target.platform },
        Math.max(0, (publishedAt.getTime() - post.scheduledAt.getTime()) / 1000),
      );
  }
  return { outcome: how };
}

/**
 * A claimed target's call failed: wait and retry, or fail it for good with the reason kept.
 * `attemptMade`: whether a publish call was made (false: the token, the lookup or the content
 * stopped it first, and the attempt counted at the claim is given back).
 */
async function settle(
  rt: PublishingRuntime,
  claim: Claim,
  error: PlatformError,
  lookupIfSent: boolean,
  options: { attemptMade?: boolean; final?: boolean } = {},
): Promise<{ outcome: string }> {
  const { platform, settings } = rt;
  const { target, post } = claim;
  const metrics = metricsOf(rt);
  const attempts = options.attemptMade === false ? target.attempts - 1 : target.attempts;
  const unknown = lookupIfSent && (error.sent || error.code === 'OUTCOME_UNKNOWN');
  const needsLookup = target.needsLookup || unknown;
  const targetError = errorOf(error);

  let kind: 'wait' | 'retry' | 'fail' | 'pause';
  let delayMs = 0;
  let failures = target.failures;
  if (options.final) kind = 'fail';
  else if (error.code === 'ACCOUNT_REAUTH_REQUIRED') kind = 'pause';
  else if (
    (error.code === 'PLATFORM_RATE_LIMITED' || error.code === 'PLATFORM_QUOTA_EXHAUSTED') &&
    error.retryable &&
    !unknown
  ) {
    // The platform said when: wait for it, not counted as a failure.
    kind = 'wait';
    delayMs = error.retryAfterMs ?? (error.code === 'PLATFORM_RATE_LIMITED' ? 60_000 : 3_600_000);
  } else if (error.retryable || unknown) {
    failures += 1;
    // The last attempts' outcome unknown: a few more runs only look it up, never call again.
    const last = settings.PUBLISHING_MAX_ATTEMPTS + (needsLookup ? LOOKUP_RUNS : 0);
    if (failures >= last) kind = 'fail';
    else {
      kind = 'retry';
      delayMs = Math.max(
        error.retryAfterMs ?? 0,
        backoffMs(
          failures,
          ms(settings.PUBLISHING_RETRY_INITIAL),
          ms(settings.PUBLISHING_RETRY_MAX),
        ),
      );
    }
  } else kind = 'fail';

  const moved = await withTransaction(platform.database.db, async (trx) => {
    const db = postsDb(trx);
    if (kind === 'wait' || kind === 'retry') {
      const row = await enqueueTarget(
        trx,
        platform,
        settings,
        target,
        new Date(Date.now() + delayMs),
        {
          attempts,
          failures,
          needsLookup,
          error: targetError,
        },
      );
      if (row) await refreshPostStatus(db, [target.postId]);
      return row !== null;
    }
    const row = await transitionTarget(db, target.id, target.version, {
      status: 'failed',
      attempts,
      failures,
      needsLookup,
      leaseUntil: null,
      paused: kind === 'pause',
      error: targetError,
      jobId: null,
    });
    if (!row) return false;
    await refreshPostStatus(db, [target.postId]);
    await platform.events.publish(trx, postFailed, {
      data: {
        postId: target.postId,
        targetId: target.id,
        accountId: target.accountId,
        platform: target.platform,
        code: targetError.code,
        message: targetError.message,
        retryable: targetError.retryable,
        action: targetError.action,
        attempts,
      },
      subject: { type: 'publishing_post', id: target.postId },
      actorId: null,
      ownerId: post.userId,
    });
    // A reconnection is the accounts half's one mail; any other failure for good is ours.
    if (kind === 'fail') await mailOwner(rt, trx, claim, targetError);
    return true;
  });
  if (!moved) return { outcome: 'stale' };
  if (kind === 'pause') {
    metrics.failed.inc({ platform: target.platform, code: targetError.code });
    // The account needs its owner: mark it (one mail, its other targets paused through the hooks).
    try {
      await rt.accounts.requireReauth(target.accountId, error.message);
    } catch {
      // Already marked, or the accounts half is down: the target is paused either way.
    }
    return { outcome: 'paused' };
  }
  if (kind === 'fail') {
    metrics.failed.inc({ platform: target.platform, code: targetError.code });
    return { outcome: 'failed' };
  }
  metrics.retries.inc({
    platform: target.platform,
    reason: kind === 'wait' ? 'rate_limited' : unknown ? 'lookup' : 'retry',
  });
  return { outcome: kind };
}

const ACTION_TEXT: Record<string, string> = {
  reconnect_account: 'Reconnect the account, then retry the post.',
  edit_post: 'Edit the post to meet the platform’s rules, then retry it.',
  retry_later: 'The platform kept failing; retry the post later.',
  none: 'Nothing can be done about it on our side.',
};

async function mailOwner(rt: PublishingRuntime, trx: AnyDb, claim: Claim, error: TargetError) {
  const contact = await accountContact(trx, claim.post.userId);
  if (!contact) return;
  try {
    await rt.platform.mail.send(
      {
        template: publishFailedTemplate,
        to: contact.email,
        vars: {
          username: contact.username,
          platform: claim.adapter?.displayName ?? claim.target.platform,
          account: claim.target.accountId,
          reason: error.message,
          action: ACTION_TEXT[error.action] ?? '',
          scheduledAt: claim.post.scheduledAt?.toISOString() ?? 'now',
        },
        userId: claim.post.userId,
      },
      { trx },
    );
  } catch (mailError) {
    // The template's send limit: the failure is recorded and its event sent regardless.
    rt.platform.logger.warn(
      { err: mailError, targetId: claim.target.id },
      'publishing: failure mail not sent',
    );
  }
}

/**
 * Targets claimed by a worker that died (or hung past its lease): put back to scheduled with the
 * lookup pending, so the next run asks the platform for the marker before sending anything.
 */
/** One claim past its lease put back to scheduled, its lookup pending (false: moved meanwhile). */
async function sweepClaim(rt: PublishingRuntime, target: TargetRow): Promise<boolean> {
  const { platform, settings } = rt;
  const done = await withTransaction(platform.database.db, async (trx) => {
    const row = await enqueueTarget(trx, platform, settings, target, new Date(), {
      needsLookup: true,
    });
    if (row) await refreshPostStatus(postsDb(trx), [target.postId]);
    return row !== null;
  });
  if (done) metricsOf(rt).retries.inc({ platform: target.platform, reason: 'lookup' });
  return done;
}

export async function sweepExpiredClaims(rt: PublishingRuntime, limit = 500): Promise<number> {
  const { platform } = rt;
  const expired = await expiredClaims(postsDb(platform.database.db), new Date(), limit);
  let settled = 0;
  for (const target of expired) if (await sweepClaim(rt, target)) settled += 1;
  if (settled > 0)
    platform.logger.warn(
      { settled },
      'publishing: claims past their lease settled by marker lookup',
    );
  return settled;
}

/** Events for scheduled targets (in the scheduling transaction). */
export async function publishScheduled(
  platform: Platform,
  trx: AnyDb,
  userId: string,
  targets: readonly TargetRow[],
  scheduledAt: Date,
  requestId: string | null,
): Promise<void> {
  for (const t of targets)
    await platform.events.publish(trx, postScheduled, {
      data: {
        postId: t.postId,
        targetId: t.id,
        accountId: t.accountId,
        platform: t.platform,
        scheduledAt: scheduledAt.toISOString(),
      },
      subject: { type: 'publishing_post', id: t.postId },
      actorId: userId,
      ownerId: userId,
      requestId,
    });
}
