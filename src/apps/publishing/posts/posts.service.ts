import { Value } from 'typebox/value';
import { newId, withTransaction, type AnyDb } from '../../../platform/db/index.ts';
import { parseDuration } from '../../../platform/config/index.ts';
import { lookupFiles } from '../../../platform/files/index.ts';
import { HttpCodes, HttpError, type FieldError } from '../../../platform/http/index.ts';
import type { AccountRef, PlatformId } from '../platforms/types.ts';
import type { PublishingRuntime } from '../context.ts';
import { PostCodes } from './posts.errors.ts';
import {
  deleteTargets,
  findPost,
  insertPost,
  insertTargets,
  latestZone,
  listPosts,
  postsBetween,
  postsDb,
  refreshPostStatus,
  transitionTarget,
  updatePost,
  type PostWithTargets,
  type TargetRow,
} from './posts.repository.ts';
import { assertZone, dayRange, localDay, parseScheduledAt } from './posts.time.ts';
import { enqueueTarget, MEDIA_PURPOSE, publishScheduled } from './publish.ts';

export interface Actor {
  userId: string;
  requestId: string | null;
}

export interface TargetInput {
  accountId: string;
  options?: Record<string, unknown>;
}

export interface PostInput {
  text: string;
  mediaFileIds: readonly string[];
  targets: readonly TargetInput[];
  timeZone: string;
}

/** One content rule broken, for one target. */
export interface ContentProblemOut {
  accountId: string;
  platform: PlatformId;
  code: 'CONTENT_REJECTED' | 'MEDIA_REJECTED';
  rule: string;
  message: string;
}

const CALENDAR_MAX = 1000;

/** The posts' rules: validation, scheduling in one transaction with the jobs, the reads. */
export class PostsService {
  readonly #rt: PublishingRuntime;

  constructor(rt: PublishingRuntime) {
    this.#rt = rt;
  }

  get #db() {
    return this.#rt.platform.database.db;
  }

  #paging() {
    const { config } = this.#rt.platform;
    return { secret: config.secrets.appSecret, estimateAbove: config.database.estimateAbove };
  }

  #scheduledAt(raw: string, zone: string): Date {
    const maxAhead = parseDuration(this.#rt.settings.PUBLISHING_MAX_SCHEDULE_AHEAD) * 1000;
    return parseScheduledAt(raw, zone, new Date(), maxAhead);
  }

  /**
   * Everything a post must satisfy before it is stored: the caller's own accounts (active when
   * scheduling), the caller's own ready media, and each target platform's options and rules.
   */
  async #check(
    db: AnyDb,
    userId: string,
    input: PostInput,
    scheduling: boolean,
  ): Promise<Map<string, AccountRef>> {
    const ids = input.targets.map((t) => t.accountId);
    const dup = ids.findIndex((id, i) => ids.indexOf(id) !== i);
    if (dup >= 0)
      throw new HttpError(HttpCodes.VALIDATION_FAILED, {
        detail: 'An account appears twice among the targets.',
        errors: [{ path: `/body/targets/${dup}/accountId`, message: 'must be unique' }],
      });
    const accounts = await this.#rt.accounts.ownedBy(db, userId, ids);
    const unknown: FieldError[] = [];
    const disabled: FieldError[] = [];
    const reauth: FieldError[] = [];
    input.targets.forEach((t, i) => {
      const account = accounts.get(t.accountId);
      const path = `/body/targets/${i}/accountId`;
      if (!account || account.status === 'disconnected')
        unknown.push({ path, message: 'is not one of your connected accounts' });
      else if (!this.#rt.adapters.has(account.platform))
        disabled.push({ path, message: `${account.platform} is not enabled` });
      else if (scheduling && account.status !== 'active')
        reauth.push({ path, message: `${account.name} must be reconnected first` });
    });
    if (unknown.length > 0)
      throw new HttpError(PostCodes.POST_ACCOUNT_UNKNOWN, {
        detail: 'A target names an account you have not connected.',
        errors: unknown,
      });
    if (disabled.length > 0)
      throw new HttpError(PostCodes.POST_PLATFORM_DISABLED, {
        detail: 'A target’s platform is not enabled on this server.',
        errors: disabled,
      });
    if (reauth.length > 0)
      throw new HttpError(PostCodes.POST_ACCOUNT_REAUTH_REQUIRED, {
        detail:
          'Reconnect the account (POST /api/v1/publishing/accounts/:id/reconnect), then schedule.',
        errors: reauth,
      });

    const files = await lookupFiles(db, input.mediaFileIds, {
      purpose: MEDIA_PURPOSE,
      ownerId: userId,
    });
    const missing: FieldError[] = [];
    const notReady: FieldError[] = [];
    input.mediaFileIds.forEach((id, i) => {
      const f = files.get(id);
      if (!f)
        missing.push({
          path: `/body/mediaFileIds/${i}`,
          message: 'is not one of your publishing.media files',
        });
      else if (f.status !== 'ready')
        notReady.push({ path: `/body/mediaFileIds/${i}`, message: `is ${f.status}` });
    });
    if (missing.length > 0)
      throw new HttpError(PostCodes.POST_MEDIA_UNKNOWN, {
        detail: 'Upload media with purpose publishing.media first (POST /api/v1/files).',
        errors: missing,
      });
    if (notReady.length > 0)
      throw new HttpError(PostCodes.POST_MEDIA_NOT_READY, {
        detail: 'Wait for the media to be ready (file.ready).',
        errors: notReady,
      });

    const media = input.mediaFileIds.map((id) => {
      const f = files.get(id);
      return {
        contentType: f?.contentType ?? '',
        size: f?.size ?? 0,
        width: f?.width ?? null,
        height: f?.height ?? null,
        durationS: null,
      };
    });
    const problems: ContentProblemOut[] = [];
    for (const t of input.targets) {
      const account = accounts.get(t.accountId) as AccountRef;
      const adapter = this.#rt.adapters.get(account.platform);
      if (!adapter) continue;
      const options = t.options ?? {};
      const base = { accountId: t.accountId, platform: account.platform };
      if (!Value.Check(adapter.optionsSchema, options)) {
        for (const e of [...Value.Errors(adapter.optionsSchema, options)].slice(0, 5))
          problems.push({
            ...base,
            code: 'CONTENT_REJECTED',
            rule: `options${e.instancePath.replaceAll('/', '.')}`,
            message: e.message,
          });
        continue;
      }
      for (const p of adapter.validate({ text: input.text, media, options }))
        problems.push({ ...base, ...p });
    }
    if (problems.length > 0)
      throw new HttpError(PostCodes.POST_CONTENT_REJECTED, {
        detail: problems.map((p) => `${p.platform}: ${p.message}`).join(' '),
        extensions: { problems },
      });
    return accounts;
  }

  async create(
    actor: Actor,
    body: {
      text: string;
      mediaFileIds?: string[];
      targets: TargetInput[];
      scheduledAt?: string;
      timeZone: string;
    },
  ): Promise<PostWithTargets> {
    assertZone(body.timeZone);
    const at =
      body.scheduledAt === undefined ? null : this.#scheduledAt(body.scheduledAt, body.timeZone);
    const input: PostInput = { ...body, mediaFileIds: body.mediaFileIds ?? [] };
    const id = newId();
    await withTransaction(this.#db, async (trx) => {
      const accounts = await this.#check(trx, actor.userId, input, at !== null);
      await insertPost(postsDb(trx), {
        id,
        userId: actor.userId,
        text: input.text,
        mediaFileIds: input.mediaFileIds,
        status: 'draft',
        scheduledAt: at,
        timeZone: body.timeZone,
      });
      await this.#insertTargets(trx, id, actor.userId, input.targets, accounts);
      if (at) await this.#schedule(trx, actor, id, at);
    });
    return this.get(actor, id);
  }

  async #insertTargets(
    trx: AnyDb,
    postId: string,
    userId: string,
    targets: readonly TargetInput[],
    accounts: Map<string, AccountRef>,
  ): Promise<void> {
    await insertTargets(
      postsDb(trx),
      targets.map((t) => ({
        id: newId(),
        postId,
        accountId: t.accountId,
        userId,
        platform: (accounts.get(t.accountId) as AccountRef).platform,
        options: t.options ?? {},
        status: 'draft' as const,
      })),
    );
  }

  /** Every target not published (nor being published) scheduled for `at`: jobs in `trx`. */
  async #schedule(trx: AnyDb, actor: Actor, postId: string, at: Date): Promise<void> {
    const post = await findPost(postsDb(trx), actor.userId, postId);
    if (!post) throw new HttpError(PostCodes.POST_NOT_FOUND);
    const scheduled: TargetRow[] = [];
    for (const t of post.targets) {
      if (t.status === 'published' || t.status === 'publishing') continue;
      const row = await enqueueTarget(
        trx,
        this.#rt.platform,
        this.#rt.settings,
        t,
        at,
        { paused: false, error: null, failures: 0 },
        actor,
      );
      if (row) scheduled.push(row);
    }
    await refreshPostStatus(postsDb(trx), [postId]);
    await publishScheduled(this.#rt.platform, trx, actor.userId, scheduled, at, actor.requestId);
  }

  async #locked(trx: AnyDb, actor: Actor, id: string): Promise<PostWithTargets> {
    const post = await findPost(postsDb(trx), actor.userId, id, true);
    if (!post) throw new HttpError(PostCodes.POST_NOT_FOUND);
    return post;
  }

  static #assertChangeable(post: PostWithTargets): void {
    if (post.targets.some((t) => t.status === 'publishing' || t.status === 'published'))
      throw new HttpError(PostCodes.POST_NOT_SCHEDULABLE, {
        detail: 'A target is being published or was published: duplicate the post to change it.',
      });
  }

  async get(actor: Actor, id: string): Promise<PostWithTargets> {
    const post = await findPost(postsDb(this.#db), actor.userId, id);
    if (!post) throw new HttpError(PostCodes.POST_NOT_FOUND);
    return post;
  }

  async update(
    actor: Actor,
    id: string,
    body: {
      text?: string;
      mediaFileIds?: string[];
      targets?: TargetInput[];
      scheduledAt?: string | null;
      timeZone?: string;
    },
  ): Promise<PostWithTargets> {
    if (body.timeZone !== undefined) assertZone(body.timeZone);
    await withTransaction(this.#db, async (trx) => {
      const post = await this.#locked(trx, actor, id);
      PostsService.#assertChangeable(post);
      const zone = body.timeZone ?? post.timeZone;
      let at: Date | null;
      if (body.scheduledAt === null) at = null;
      else if (body.scheduledAt !== undefined) at = this.#scheduledAt(body.scheduledAt, zone);
      else at = post.status === 'scheduled' ? post.scheduledAt : null;
      if (at && at.getTime() <= Date.now())
        throw new HttpError(PostCodes.POST_SCHEDULED_AT_PAST, {
          detail: 'The post’s time has passed: send a new scheduledAt.',
        });
      const input: PostInput = {
        text: body.text ?? post.text,
        mediaFileIds: body.mediaFileIds ?? post.mediaFileIds,
        targets:
          body.targets ?? post.targets.map((t) => ({ accountId: t.accountId, options: t.options })),
        timeZone: zone,
      };
      const accounts = await this.#check(trx, actor.userId, input, at !== null);
      await updatePost(postsDb(trx), id, {
        text: input.text,
        mediaFileIds: input.mediaFileIds,
        timeZone: zone,
        scheduledAt: body.scheduledAt === undefined ? post.scheduledAt : at,
      });
      if (body.targets) {
        // Replaced: the old targets' jobs find no target and exit.
        await deleteTargets(postsDb(trx), id);
        await this.#insertTargets(trx, id, actor.userId, body.targets, accounts);
      }
      if (at) await this.#schedule(trx, actor, id, at);
      else await this.#unschedule(trx, id, body.targets ? [] : post.targets, 'draft');
      await refreshPostStatus(postsDb(trx), [id]);
    });
    return this.get(actor, id);
  }

  /** Scheduled (and paused) targets moved to `to`: their jobs become stale. */
  async #unschedule(
    trx: AnyDb,
    postId: string,
    targets: readonly TargetRow[],
    to: 'draft' | 'cancelled',
  ): Promise<number> {
    let moved = 0;
    for (const t of targets) {
      const pending =
        t.status === 'scheduled' ||
        (t.status === 'failed' && t.paused) ||
        (to === 'cancelled' && t.status === 'draft');
      if (!pending) continue;
      const row = await transitionTarget(postsDb(trx), t.id, t.version, {
        status: to,
        jobId: null,
        dueAt: null,
        paused: false,
      });
      if (row) moved += 1;
    }
    await refreshPostStatus(postsDb(trx), [postId]);
    return moved;
  }

  async schedule(actor: Actor, id: string, body: { scheduledAt?: string; timeZone?: string }) {
    if (body.timeZone !== undefined) assertZone(body.timeZone);
    await withTransaction(this.#db, async (trx) => {
      const post = await this.#locked(trx, actor, id);
      if (post.targets.some((t) => t.status === 'publishing'))
        throw new HttpError(PostCodes.POST_NOT_SCHEDULABLE, {
          detail: 'A target is being published.',
        });
      const zone = body.timeZone ?? post.timeZone;
      let at: Date;
      if (body.scheduledAt !== undefined) at = this.#scheduledAt(body.scheduledAt, zone);
      else if (post.scheduledAt && post.scheduledAt.getTime() > Date.now()) at = post.scheduledAt;
      else
        throw new HttpError(PostCodes.POST_SCHEDULE_MISSING, {
          detail: post.scheduledAt
            ? 'The post’s time has passed: send scheduledAt.'
            : 'Send scheduledAt.',
        });
      if (post.targets.every((t) => t.status === 'published'))
        throw new HttpError(PostCodes.POST_NOT_SCHEDULABLE, {
          detail: 'Every target is published.',
        });
      await this.#check(
        trx,
        actor.userId,
        {
          text: post.text,
          mediaFileIds: post.mediaFileIds,
          targets: post.targets
            .filter((t) => t.status !== 'published')
            .map((t) => ({ accountId: t.accountId, options: t.options })),
          timeZone: zone,
        },
        true,
      );
      await updatePost(postsDb(trx), id, { scheduledAt: at, timeZone: zone });
      await this.#schedule(trx, actor, id, at);
    });
    return this.get(actor, id);
  }

  async cancel(actor: Actor, id: string) {
    await withTransaction(this.#db, async (trx) => {
      const post = await this.#locked(trx, actor, id);
      const moved = await this.#unschedule(trx, id, post.targets, 'cancelled');
      if (moved === 0)
        throw new HttpError(PostCodes.POST_NOT_SCHEDULED, {
          detail: 'No target of this post is waiting to be published.',
        });
    });
    return this.get(actor, id);
  }

  async duplicate(actor: Actor, id: string) {
    const post = await this.get(actor, id);
    return this.create(actor, {
      text: post.text,
      mediaFileIds: post.mediaFileIds,
      targets: post.targets.map((t) => ({ accountId: t.accountId, options: t.options })),
      timeZone: post.timeZone,
    });
  }

  async retry(actor: Actor, id: string, targetId: string) {
    await withTransaction(this.#db, async (trx) => {
      const post = await this.#locked(trx, actor, id);
      const target = post.targets.find((t) => t.id === targetId);
      if (!target) throw new HttpError(PostCodes.POST_TARGET_NOT_FOUND);
      if (target.status !== 'failed')
        throw new HttpError(PostCodes.POST_TARGET_NOT_RETRYABLE, {
          detail: `The target is ${target.status}.`,
        });
      await this.#check(
        trx,
        actor.userId,
        {
          text: post.text,
          mediaFileIds: post.mediaFileIds,
          targets: [{ accountId: target.accountId, options: target.options }],
          timeZone: post.timeZone,
        },
        true,
      );
      const at =
        post.scheduledAt && post.scheduledAt.getTime() > Date.now() ? post.scheduledAt : new Date();
      // The lookup stays pending: a call whose outcome was unknown is still looked up first.
      const row = await enqueueTarget(
        trx,
        this.#rt.platform,
        this.#rt.settings,
        target,
        at,
        { failures: 0, paused: false, error: null },
        actor,
      );
      await refreshPostStatus(postsDb(trx), [id]);
      if (row)
        await publishScheduled(this.#rt.platform, trx, actor.userId, [row], at, actor.requestId);
    });
    return this.get(actor, id);
  }

  async remove(actor: Actor, id: string): Promise<void> {
    await withTransaction(this.#db, async (trx) => {
      const post = await this.#locked(trx, actor, id);
      if (post.targets.some((t) => t.status === 'publishing'))
        throw new HttpError(PostCodes.POST_NOT_SCHEDULABLE, {
          detail: 'A target is being published: delete it once it is done.',
        });
      await this.#unschedule(trx, id, post.targets, 'cancelled');
      await updatePost(postsDb(trx), id, { deletedAt: new Date() });
    });
  }

  list(actor: Actor, query: Readonly<Record<string, unknown>>) {
    const { platform, account, ...rest } = query as Record<string, unknown> & {
      platform?: PlatformId;
      account?: string;
    };
    return listPosts(
      postsDb(this.#db),
      actor.userId,
      rest,
      {
        ...(platform === undefined ? {} : { platform }),
        ...(account === undefined ? {} : { accountId: account }),
      },
      this.#paging(),
    );
  }

  async calendar(actor: Actor, query: { from: string; to: string; timeZone?: string }) {
    const db = postsDb(this.#db);
    const zone = query.timeZone ?? (await latestZone(db, actor.userId)) ?? 'UTC';
    assertZone(zone);
    const { start, end } = dayRange(query.from, query.to, zone);
    const posts = await postsBetween(db, actor.userId, start, end, CALENDAR_MAX + 1);
    const truncated = posts.length > CALENDAR_MAX;
    const byDay = new Map<string, PostWithTargets[]>();
    for (const p of posts.slice(0, CALENDAR_MAX)) {
      const day = localDay(p.scheduledAt as Date, zone);
      const list = byDay.get(day) ?? [];
      list.push(p);
      byDay.set(day, list);
    }
    return {
      timeZone: zone,
      days: [...byDay].map(([date, items]) => ({ date, posts: items })),
      truncated,
    };
  }
}
