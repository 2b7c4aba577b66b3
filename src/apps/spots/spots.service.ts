import { createHash } from 'node:crypto';
import { cacheKey, type Cache } from '../../platform/cache/index.ts';
import {
  decodeCursor,
  encodeCursor,
  newId,
  withTransaction,
  type AnyDb,
} from '../../platform/db/index.ts';
import { lookupFiles, type FileInfo } from '../../platform/files/index.ts';
import { HttpError } from '../../platform/http/index.ts';
import type { Platform } from '../../platform/modules/index.ts';
import { boxTags, invalidateSpot, spotTag } from './spots.cache.ts';
import { SpotsCodes } from './spots.errors.ts';
import {
  pictureReady,
  SPOTS_MODERATE,
  spotCreated,
  spotHidden,
  spotUpdated,
} from './spots.events.ts';
import { spotPicture } from './spots.files.ts';
import { recountFavouritesJob } from './spots.jobs.ts';
import type { GeoEngine } from './spots.geo.ts';
import * as repo from './spots.repository.ts';
import type {
  AddPictureBody,
  CreateSpotBody,
  PageQuery,
  PictureResponse,
  SpotDetail,
  SpotListQuery,
  SpotPage,
  SpotResponse,
  SpotSort,
  UpdateSpotBody,
} from './spots.schemas.ts';

/** The module's settings, as the service uses them. */
export interface SpotsSettings {
  maxRadiusM: number;
  defaultRadiusM: number;
  bboxMaxResults: number;
  reportHideThreshold: number;
  moderateNewAccounts: boolean;
  trustedAfter: number;
  /** Days an account must exist before its spots skip review (0: age not considered). */
  trustedAfterDays: number;
  cacheTtlS: number;
  recountDelayS: number;
  searchLanguage: string;
  maxPictures: number;
  /** `SPOTS_GEO`: how radius and nearest-first queries are answered (`spots.geo.ts`). */
  geo: 'auto' | GeoEngine;
}

/** Who is asking: anonymous (`userId` null) or a signed-in user with their session's `amr`. */
export interface Viewer {
  userId: string | null;
  amr: readonly string[];
  requestId: string;
}

const DEFAULT_LIMIT = 20;
const MAX_LIMIT = 100;
const MAX_QUERY_WORDS = 8;
/** A plain decimal: no exponent, no NaN or Infinity, no hex. */
const DECIMAL = /^\s*(-?\d{1,3}(?:\.\d{1,15})?)\s*$/;

function invalidLocation(detail: string): HttpError {
  return new HttpError(SpotsCodes.INVALID_LOCATION, { detail });
}
function invalidQuery(detail: string): HttpError {
  return new HttpError(SpotsCodes.INVALID_SPOT_QUERY, { detail });
}
const notFound = () => new HttpError(SpotsCodes.SPOT_NOT_FOUND);

function decimals(raw: string, count: number, what: string): number[] {
  const parts = raw.split(',');
  if (parts.length !== count)
    throw invalidLocation(`\`${what}\` takes ${String(count)} comma-separated numbers.`);
  return parts.map((p) => {
    const m = DECIMAL.exec(p);
    const value = m ? Number(m[1]) : Number.NaN;
    if (!Number.isFinite(value))
      throw invalidLocation(
        `\`${what}\` takes plain decimal numbers (no NaN, Infinity or exponent).`,
      );
    return roundCoordinate(value);
  });
}

function checkLat(lat: number, what: string): void {
  if (lat < -90 || lat > 90) throw invalidLocation(`${what}: a latitude is within −90..90.`);
}
function checkLng(lng: number, what: string): void {
  if (lng < -180 || lng > 180) throw invalidLocation(`${what}: a longitude is within −180..180.`);
}

/** `lat,lng`. */
export function parseNear(raw: string): { lat: number; lng: number } {
  const [lat = 0, lng = 0] = decimals(raw, 2, 'near');
  checkLat(lat, 'near');
  checkLng(lng, 'near');
  return { lat, lng };
}

/**
 * `minLng,minLat,maxLng,maxLat`. `minLng > maxLng` is a viewport crossing the antimeridian
 * (170 → −170): two boxes, east of `minLng` and west of `maxLng`. `minLat > maxLat` is an
 * inverted box: refused (latitudes do not wrap).
 */
export function parseBbox(raw: string): repo.Box[] {
  const [minLng = 0, minLat = 0, maxLng = 0, maxLat = 0] = decimals(raw, 4, 'bbox');
  checkLng(minLng, 'bbox');
  checkLng(maxLng, 'bbox');
  checkLat(minLat, 'bbox');
  checkLat(maxLat, 'bbox');
  if (minLat > maxLat) throw invalidLocation('bbox: minLat is above maxLat (an inverted box).');
  if (minLng <= maxLng) return [{ minLng, minLat, maxLng, maxLat }];
  return [
    { minLng, minLat, maxLng: 180, maxLat },
    { minLng: -180, minLat, maxLng, maxLat },
  ];
}

/** Lower-case, NFKC, single spaces; duplicates in any case kept once, in their first place. */
export function normalizeTags(tags: readonly string[]): string[] {
  const seen = new Set<string>();
  for (const tag of tags) {
    const t = tag.normalize('NFKC').trim().replace(/\s+/g, ' ').toLowerCase();
    if (t.length > 0) seen.add(t);
  }
  return [...seen];
}

/** The words of a search, split into those `websearch_to_tsquery` excludes (`-word`) and the rest. */
function searchWords(q: string): { included: string[]; excluded: string[] } {
  const included: string[] = [];
  const excluded: string[] = [];
  for (const chunk of q.normalize('NFKC').toLowerCase().split(/\s+/u)) {
    const words = chunk.split(/[^\p{L}\p{N}]+/u).filter((w) => w.length > 0);
    (chunk.startsWith('-') ? excluded : included).push(...words);
  }
  return { included, excluded };
}

/**
 * The prefix form of a search: its words (letters and digits only, so no tsquery syntax can
 * pass) joined by `&`, the last one as a prefix (`brid` finds `bridge`). Null without a word.
 * Excluded words (`-word`) are not part of it (see `excludedWords`).
 */
export function prefixQuery(q: string): string | null {
  const words = searchWords(q).included.slice(0, MAX_QUERY_WORDS);
  if (words.length === 0) return null;
  return `${words.join(' & ')}:*`;
}

/**
 * The excluded words of a search as `websearch_to_tsquery` input (`-a -b`, letters and digits
 * only), or null: the prefix form is OR-ed with the language's query, so it must exclude them
 * too (in the language's stemming), or they would come back through it.
 */
export function excludedWords(q: string): string | null {
  const words = searchWords(q).excluded.slice(0, MAX_QUERY_WORDS);
  return words.length === 0 ? null : words.map((w) => `-${w}`).join(' ');
}

/**
 * Coordinates are kept to 7 decimals (about 1 cm): finer means nothing for a place, and a
 * subnormal such as 9e-323 would make PostgreSQL's trigonometry underflow (an error, not a 0).
 */
export function roundCoordinate(value: number): number {
  return Math.round(value * 1e7) / 1e7 + 0; // + 0: no -0
}

function iso(value: Date | string): string {
  return (value instanceof Date ? value : new Date(value)).toISOString();
}

function pictureOf(row: repo.PictureRow, file: FileInfo | undefined): PictureResponse {
  const ready = row.status === 'ready' && file?.status === 'ready';
  return {
    id: row.id,
    spotId: row.spotId,
    fileId: row.fileId,
    caption: row.caption,
    status: row.status,
    width: ready ? file.width : null,
    height: ready ? file.height : null,
    blurhash: ready ? file.blurhash : null,
    path: ready ? file.path : null,
    variants: ready
      ? file.variants.map((v) => ({
          id: v.id,
          width: v.width,
          height: v.height,
          contentType: v.contentType,
          size: v.size,
          path: v.path,
        }))
      : [],
    createdAt: iso(row.createdAt),
  };
}

/** The spots app's rules: no Fastify types; SQL only through the repository. */
export class SpotsService {
  readonly #platform: Platform;
  readonly #settings: SpotsSettings;

  /** The geo engine, once known (`auto`: PostGIS when its migration installed it). */
  #geo: Promise<GeoEngine> | null = null;

  constructor(platform: Platform, settings: SpotsSettings) {
    this.#platform = platform;
    this.#settings = settings;
  }

  /** The geo engine of `near` listings: as set, or (`auto`) what the migration installed. */
  #geoEngine(): Promise<GeoEngine> {
    const wanted = this.#settings.geo;
    if (wanted === 'earthdistance') return Promise.resolve('earthdistance');
    this.#geo ??= repo.postgisInstalled(this.#db).then(
      (installed) => {
        if (wanted === 'postgis' && !installed)
          throw new Error(
            'SPOTS_GEO=postgis, but the PostGIS structures are missing: the spots migration found no PostGIS on this server (or no right to create it)',
          );
        return installed ? 'postgis' : 'earthdistance';
      },
      (error: unknown) => {
        // A failed lookup (the database unavailable) is tried again on the next listing.
        this.#geo = null;
        throw error;
      },
    );
    return this.#geo;
  }

  get #db(): AnyDb {
    return this.#platform.database.db;
  }
  get #cache(): Cache {
    return this.#platform.cache;
  }

  async #isModerator(viewer: Viewer): Promise<boolean> {
    if (viewer.userId === null) return false;
    return this.#platform.access.hasPermission(viewer.userId, SPOTS_MODERATE, viewer.amr);
  }

  /**
   * Whether an account's new spots skip review (with `SPOTS_MODERATE_NEW_ACCOUNTS`): it is at
   * least `SPOTS_TRUSTED_AFTER_DAYS` old and has `SPOTS_TRUSTED_AFTER` public spots.
   */
  async #trusted(db: AnyDb, userId: string): Promise<boolean> {
    const { trustedAfter, trustedAfterDays } = this.#settings;
    if (trustedAfterDays > 0) {
      const since = await this.#platform.access.accountCreatedAt(userId);
      if (since === null || Date.now() - since.getTime() < trustedAfterDays * 86_400_000)
        return false;
    }
    return (await repo.countLiveSpots(db, userId)) >= trustedAfter;
  }

  /** Whether the viewer sees more than the public: the owner, or a moderator. */
  async #privileged(spot: repo.SpotRow, viewer: Viewer): Promise<boolean> {
    return spot.ownerId === viewer.userId || (await this.#isModerator(viewer));
  }

  /** The spot if the viewer may see it (public, theirs, or moderator); 404 otherwise. */
  async #visible(db: AnyDb, id: string, viewer: Viewer, lock = false): Promise<repo.SpotRow> {
    const spot = await repo.findSpot(db, id, { lock });
    if (!spot) throw notFound();
    if (spot.status !== 'visible' && !(await this.#privileged(spot, viewer))) throw notFound();
    return spot;
  }

  /** The spot if the viewer may change it; 404 when they may not see it, 403 when only see. */
  async #editable(db: AnyDb, id: string, viewer: Viewer): Promise<repo.SpotRow> {
    const spot = await this.#visible(db, id, viewer, true);
    if (!(await this.#privileged(spot, viewer))) throw new HttpError(SpotsCodes.SPOT_NOT_OWNER);
    return spot;
  }

  async #files(rows: readonly repo.PictureRow[]): Promise<Map<string, FileInfo>> {
    if (rows.length === 0) return new Map();
    return lookupFiles(
      this.#db,
      rows.map((r) => r.fileId),
      { purpose: spotPicture.name },
    );
  }

  #present(row: repo.SpotRow, cover: PictureResponse | null, moderation: boolean): SpotResponse {
    const spot: SpotResponse = {
      id: row.id,
      ownerId: row.ownerId,
      name: row.name,
      description: row.description,
      address: row.address,
      category: row.category,
      tags: row.tags,
      language: row.language,
      location: { lat: row.lat, lng: row.lng },
      favouriteCount: row.favouriteCount,
      coverPictureId: row.coverPictureId,
      cover,
      status: row.status,
      createdAt: iso(row.createdAt),
      updatedAt: iso(row.updatedAt),
    };
    if (row.distanceM !== undefined && row.distanceM !== null)
      spot.distanceM = Math.round(row.distanceM * 10) / 10;
    if (moderation) spot.moderationReason = row.moderationReason;
    return spot;
  }

  /** List items, each with its cover picture (read with the page; its file in one lookup). */
  async #items(rows: readonly repo.SpotRow[], moderation: (r: repo.SpotRow) => boolean) {
    const covers = rows.flatMap((r) => (r.cover ? [r.cover] : []));
    const files = await this.#files(covers);
    return rows.map((row) => {
      const file = row.cover ? files.get(row.cover.fileId) : undefined;
      const cover = row.cover && file ? pictureOf(row.cover, file) : null;
      return this.#present(row, cover, moderation(row));
    });
  }

  async #detail(
    row: repo.SpotRow,
    options: { readyOnly: boolean; moderation: boolean },
  ): Promise<SpotDetail> {
    const pictures = await repo.listPictures(this.#db, [row.id], options.readyOnly);
    const files = await this.#files(pictures);
    const shown = pictures
      .filter((p) => !options.readyOnly || files.get(p.fileId)?.status === 'ready')
      .map((p) => pictureOf(p, files.get(p.fileId)));
    const ready = shown.filter((p) => p.status === 'ready');
    const cover = ready.find((p) => p.id === row.coverPictureId) ?? ready[0] ?? null;
    return { ...this.#present(row, cover, options.moderation), pictures: shown };
  }

  // -------------------------------------------------------------------------------------------
  // Spots

  async create(input: CreateSpotBody, viewer: Viewer & { userId: string }): Promise<SpotDetail> {
    const { moderateNewAccounts } = this.#settings;
    const row = await withTransaction(this.#db, async (trx) => {
      // Moderators' own spots never wait for review.
      const pending =
        moderateNewAccounts &&
        !(await this.#trusted(trx, viewer.userId)) &&
        !(await this.#isModerator(viewer));
      const spot = await repo.insertSpot(trx, {
        id: newId(),
        ownerId: viewer.userId,
        name: input.name.trim(),
        description: input.description ?? '',
        address: input.address ?? null,
        category: input.category,
        tags: normalizeTags(input.tags ?? []),
        language: input.language ?? this.#settings.searchLanguage,
        lat: roundCoordinate(input.location.lat),
        lng: roundCoordinate(input.location.lng),
        status: pending ? 'pending' : 'visible',
        moderationReason: pending ? 'New account: waiting for a moderator’s review.' : null,
      });
      await this.#platform.events.publish(trx, spotCreated, {
        data: {
          spotId: spot.id,
          ownerId: spot.ownerId,
          name: spot.name,
          category: spot.category,
          lat: spot.lat,
          lng: spot.lng,
          status: spot.status,
        },
        subject: { type: 'spot', id: spot.id },
        actorId: viewer.userId,
        ownerId: spot.ownerId,
        requestId: viewer.requestId,
      });
      return spot;
    });
    await invalidateSpot(this.#cache, row.id, [row]);
    return { ...this.#present(row, null, true), pictures: [] };
  }

  /**
   * A spot's detail. The public form of a visible spot is cached (tagged with the spot, so any
   * change drops it); a hidden, pending or deleted spot is cached as `null` (not public) and
   * answered only to its owner and moderators, uncached, with the moderation reason.
   */
  async get(id: string, viewer: Viewer): Promise<{ body: SpotDetail; public: boolean }> {
    const cached = await this.#cache.getOrSet(
      cacheKey('spots', 'spot', id),
      async () => {
        const row = await repo.findSpot(this.#db, id);
        if (!row || row.status !== 'visible') return null;
        return this.#detail(row, { readyOnly: true, moderation: false });
      },
      { ttlSeconds: this.#settings.cacheTtlS, tags: [spotTag(id)] },
    );
    if (cached) return { body: cached, public: true };
    if (viewer.userId === null) throw notFound();
    const row = await this.#visible(this.#db, id, viewer);
    return { body: await this.#detail(row, { readyOnly: false, moderation: true }), public: false };
  }

  async update(id: string, input: UpdateSpotBody, viewer: Viewer): Promise<SpotDetail> {
    const { before, after } = await withTransaction(this.#db, async (trx) => {
      const spot = await this.#editable(trx, id, viewer);
      if (input.coverPictureId) {
        const picture = await repo.findPicture(trx, id, input.coverPictureId);
        if (picture?.status !== 'ready')
          throw new HttpError(SpotsCodes.COVER_NOT_READY, {
            detail: 'The cover is one of this spot’s ready pictures.',
          });
      }
      const patch: repo.SpotPatch = {
        name: input.name?.trim(),
        description: input.description,
        address: input.address,
        category: input.category,
        tags: input.tags === undefined ? undefined : normalizeTags(input.tags),
        language: input.language,
        lat: input.location && roundCoordinate(input.location.lat),
        lng: input.location && roundCoordinate(input.location.lng),
        coverPictureId: input.coverPictureId,
      };
      const updated = await repo.updateSpot(trx, id, patch);
      const fields = Object.keys(input).sort();
      await this.#platform.events.publish(trx, spotUpdated, {
        data: { spotId: id, fields },
        subject: { type: 'spot', id },
        actorId: viewer.userId,
        ownerId: spot.ownerId,
        requestId: viewer.requestId,
      });
      return { before: spot, after: updated };
    });
    await invalidateSpot(this.#cache, id, [before, after]);
    return this.#detail(after, { readyOnly: false, moderation: true });
  }

  async remove(id: string, viewer: Viewer): Promise<void> {
    const spot = await withTransaction(this.#db, async (trx) => {
      const row = await this.#editable(trx, id, viewer);
      await repo.softDeleteSpot(trx, id);
      await this.#platform.events.publish(trx, spotUpdated, {
        data: { spotId: id, fields: ['deleted'] },
        subject: { type: 'spot', id },
        actorId: viewer.userId,
        ownerId: row.ownerId,
        requestId: viewer.requestId,
      });
      return row;
    });
    await invalidateSpot(this.#cache, id, [spot]);
  }

  // -------------------------------------------------------------------------------------------
  // Listing

  async list(query: SpotListQuery, viewer: Viewer): Promise<SpotPage> {
    const { settings } = { settings: this.#settings };
    if (query.near !== undefined && query.bbox !== undefined)
      throw invalidQuery('`near` and `bbox` do not go together: a radius or a viewport.');
    if (query.radiusM !== undefined && query.near === undefined)
      throw invalidQuery('`radiusM` needs `near`.');
    if (query.sort === 'distance' && query.near === undefined)
      throw invalidQuery('`sort=distance` needs `near`.');
    if (query.sort === 'relevance' && query.q === undefined)
      throw invalidQuery('`sort=relevance` needs `q`.');
    const radiusM = query.radiusM ?? settings.defaultRadiusM;
    if (radiusM > settings.maxRadiusM)
      throw new HttpError(SpotsCodes.RADIUS_TOO_LARGE, {
        detail: `\`radiusM\` is at most ${String(settings.maxRadiusM)} metres.`,
      });
    const filters: repo.ListFilters = {};
    if (query.near !== undefined) {
      filters.near = { ...parseNear(query.near), radiusM };
      filters.geo = await this.#geoEngine();
    }
    if (query.bbox !== undefined) filters.boxes = parseBbox(query.bbox);
    if (query.category !== undefined) filters.category = query.category;
    if (query.tag !== undefined) filters.tag = normalizeTags([query.tag])[0] ?? query.tag;
    if (query.owner !== undefined) {
      filters.owner = query.owner;
      filters.ownView = query.owner === viewer.userId;
    }
    const cap = filters.boxes ? settings.bboxMaxResults : MAX_LIMIT;
    const limit = query.limit ?? (filters.boxes ? Math.min(200, cap) : DEFAULT_LIMIT);
    if (limit > cap)
      throw invalidQuery(
        `\`limit\` is at most ${String(cap)}${filters.boxes ? ' with `bbox`' : ''}.`,
      );
    const order: repo.ListOrder =
      (query.sort as repo.ListOrder | undefined) ??
      (query.q !== undefined
        ? 'relevance'
        : filters.near
          ? 'distance'
          : filters.boxes
            ? 'popular'
            : 'newest');
    const q = query.q?.normalize('NFKC').trim();

    // The cursor belongs to this exact listing (filters and order), signed with APP_SECRET.
    const signature = `spots:${order}:${createHash('sha256')
      .update(JSON.stringify([filters, q ?? null, limit]))
      .digest('base64url')
      .slice(0, 22)}`;
    const secret = this.#platform.config.secrets.appSecret;
    const after = query.cursor ? decodeCursor(secret, signature, query.cursor, 3) : null;

    const run = async (): Promise<SpotPage> => {
      let mode: 'text' | 'fuzzy' | 'none' | undefined;
      if (q !== undefined) mode = after ? (after[2] === 'fuzzy' ? 'fuzzy' : 'text') : 'text';
      const fetch = (m: typeof mode) => {
        const f: repo.ListFilters = { ...filters };
        if (m === 'text')
          f.text = {
            mode: 'text',
            language: settings.searchLanguage,
            q: q ?? '',
            prefix: prefixQuery(q ?? ''),
            exclude: excludedWords(q ?? ''),
          };
        if (m === 'fuzzy') f.text = { mode: 'fuzzy', q: q ?? '' };
        return repo.listSpots(this.#db, f, order, limit, after ? after.slice(0, 2) : null);
      };
      let rows = await fetch(mode);
      // No full-text match on the first page: only stop words or punctuation (nothing to search
      // for: `none`), or a typo ("Eifel towr"): trigram similarity of the names.
      if (mode === 'text' && !after && rows.length === 0) {
        if (
          q === undefined ||
          (await repo.searchableTerms(this.#db, settings.searchLanguage, q)) === 0
        )
          return { items: [], page: { limit, nextCursor: null, hasMore: false }, search: 'none' };
        mode = 'fuzzy';
        rows = await fetch(mode);
      }
      const hasMore = rows.length > limit;
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      const keyOf = (r: repo.SpotRow): string | number | null =>
        order === 'newest'
          ? r.createdKey
          : order === 'popular'
            ? r.favouriteCount
            : (r.sortKey ?? null);
      const nextCursor =
        hasMore && last
          ? encodeCursor(secret, signature, [keyOf(last), last.id, mode ?? null])
          : null;
      const own = filters.ownView === true;
      const result: SpotPage = {
        items: await this.#items(page, () => own),
        page: { limit, nextCursor, hasMore },
      };
      if (filters.boxes) result.truncated = hasMore;
      if (mode) result.search = mode;
      return result;
    };

    // Map viewports (public, no text search) are cached per exact box, tagged with its cells.
    if (filters.boxes && !filters.ownView && q === undefined) {
      return this.#cache.getOrSet(cacheKey('spots-bbox', signature, query.cursor ?? ''), run, {
        ttlSeconds: settings.cacheTtlS,
        tags: boxTags(filters.boxes),
      });
    }
    return run();
  }

  // -------------------------------------------------------------------------------------------
  // Pictures

  async pictures(id: string, viewer: Viewer): Promise<{ items: PictureResponse[] }> {
    const spot = await this.#visible(this.#db, id, viewer);
    const privileged = await this.#privileged(spot, viewer);
    const rows = await repo.listPictures(this.#db, [id], !privileged);
    const files = await this.#files(rows);
    return {
      items: rows
        .filter((r) => privileged || files.get(r.fileId)?.status === 'ready')
        .map((r) => pictureOf(r, files.get(r.fileId))),
    };
  }

  async addPicture(
    id: string,
    input: AddPictureBody,
    viewer: Viewer & { userId: string },
  ): Promise<PictureResponse> {
    const { picture, file, spot } = await withTransaction(this.#db, async (trx) => {
      const spot = await this.#visible(trx, id, viewer, true);
      if (spot.ownerId !== viewer.userId) throw new HttpError(SpotsCodes.SPOT_NOT_OWNER);
      if ((await repo.countPictures(trx, id)) >= this.#settings.maxPictures)
        throw new HttpError(SpotsCodes.TOO_MANY_PICTURES, {
          detail: `A spot has at most ${String(this.#settings.maxPictures)} pictures.`,
        });
      // Before the lookup: a `file.ready` handled meanwhile waits for this commit (see lockFile).
      await repo.lockFile(trx, input.fileId);
      const info = (
        await lookupFiles(trx, [input.fileId], {
          purpose: spotPicture.name,
          ownerId: viewer.userId,
        })
      ).get(input.fileId);
      if (!info || info.status === 'failed')
        throw new HttpError(SpotsCodes.PICTURE_FILE_INVALID, {
          detail: info
            ? `The file could not be processed (${info.failureReason ?? 'failed'}); upload it again.`
            : 'No upload of yours of purpose `spots.picture` has this id.',
        });
      const row = await repo.insertPicture(trx, {
        id: newId(),
        spotId: id,
        fileId: info.id,
        uploaderId: viewer.userId,
        caption: input.caption ?? null,
        status: info.status === 'ready' ? 'ready' : 'processing',
      });
      if (!row)
        throw new HttpError(SpotsCodes.PICTURE_FILE_INVALID, {
          detail: 'This file is already a spot’s picture.',
        });
      if (row.status === 'ready')
        await this.#platform.events.publish(trx, pictureReady, {
          data: { spotId: id, pictureId: row.id, fileId: row.fileId },
          subject: { type: 'spot', id },
          actorId: viewer.userId,
          ownerId: viewer.userId,
          requestId: viewer.requestId,
        });
      return { picture: row, file: info, spot };
    });
    await invalidateSpot(this.#cache, id, [spot]);
    return pictureOf(picture, file);
  }

  async removePicture(id: string, pictureId: string, viewer: Viewer): Promise<void> {
    const spot = await withTransaction(this.#db, async (trx) => {
      const row = await this.#editable(trx, id, viewer);
      const picture = await repo.findPicture(trx, id, pictureId);
      if (!picture) throw new HttpError(SpotsCodes.PICTURE_NOT_FOUND);
      await repo.deletePicture(trx, pictureId);
      return row;
    });
    await invalidateSpot(this.#cache, id, [spot]);
  }

  // -------------------------------------------------------------------------------------------
  // Favourites

  async favourite(id: string, on: boolean, viewer: Viewer & { userId: string }): Promise<void> {
    const changed = await withTransaction(this.#db, async (trx) => {
      await this.#visible(trx, id, viewer);
      const done = on
        ? await repo.addFavourite(trx, viewer.userId, id)
        : await repo.removeFavourite(trx, viewer.userId, id);
      if (done) await repo.markFavouritesChanged(trx, id);
      return done;
    });
    if (!changed) return;
    // After the commit, not in the transaction: a send merged into a waiting recount (singleton
    // key) must be merged into one that has not started, or no run would be due for this change
    // until the sweep. A waiting run has not started, so it sees the committed change; one
    // already running lets a new one wait. If the send fails, the minute's sweep counts it.
    try {
      await this.#platform.jobs.send(
        recountFavouritesJob,
        {},
        {
          userId: viewer.userId,
          requestId: viewer.requestId,
          startAfter: this.#settings.recountDelayS,
        },
      );
    } catch (error) {
      this.#platform.logger.warn(
        { err: error, spotId: id },
        'favourite recount not enqueued; the sweep will count it',
      );
    }
  }

  async favourites(query: PageQuery, viewer: Viewer & { userId: string }) {
    const limit = query.limit ?? DEFAULT_LIMIT;
    const signature = `spots:favourites:${String(limit)}`;
    const secret = this.#platform.config.secrets.appSecret;
    const after = query.cursor ? decodeCursor(secret, signature, query.cursor, 2) : null;
    const rows = await repo.listFavourites(this.#db, viewer.userId, limit, after);
    const hasMore = rows.length > limit;
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return {
      items: await this.#items(page, (r) => r.ownerId === viewer.userId),
      page: {
        limit,
        nextCursor:
          hasMore && last ? encodeCursor(secret, signature, [last.favouritedAt, last.id]) : null,
        hasMore,
      },
    };
  }

  // -------------------------------------------------------------------------------------------
  // Reports and moderation

  async report(
    id: string,
    reason: string,
    viewer: Viewer & { userId: string },
  ): Promise<{ spotId: string; reported: boolean; hidden: boolean }> {
    const threshold = this.#settings.reportHideThreshold;
    const outcome = await withTransaction(this.#db, async (trx) => {
      const spot = await repo.findSpot(trx, id, { lock: true });
      // Only what the reporter can see publicly can be reported.
      if (!spot || spot.status !== 'visible') throw notFound();
      if (spot.ownerId === viewer.userId) throw new HttpError(SpotsCodes.CANNOT_REPORT_OWN_SPOT);
      const reported = await repo.insertReport(trx, {
        id: newId(),
        spotId: id,
        reporterId: viewer.userId,
        reason,
      });
      if (!reported) return { spot, reported, hidden: false };
      const count = await repo.incrementReports(trx, id);
      if (count < threshold) return { spot, reported, hidden: false };
      const why = `Reported by ${String(count)} users; pending review.`;
      await repo.setSpotStatus(trx, id, 'pending', why);
      await this.#platform.events.publish(trx, spotHidden, {
        data: { spotId: id, by: 'reports', reason: why },
        subject: { type: 'spot', id },
        actorId: null,
        ownerId: spot.ownerId,
        requestId: viewer.requestId,
      });
      return { spot, reported, hidden: true };
    });
    if (outcome.hidden) await invalidateSpot(this.#cache, id, [outcome.spot]);
    return { spotId: id, reported: outcome.reported, hidden: outcome.hidden };
  }

  async queue(query: PageQuery) {
    const limit = query.limit ?? DEFAULT_LIMIT;
    const signature = `spots:queue:${String(limit)}`;
    const secret = this.#platform.config.secrets.appSecret;
    const after = query.cursor ? decodeCursor(secret, signature, query.cursor, 2) : null;
    const rows = await repo.listQueue(this.#db, limit, after);
    const hasMore = rows.length > limit;
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    const items = await this.#items(page, () => true);
    return {
      items: items.map((item, i) => ({
        ...item,
        reportCount: page[i]?.reportCount ?? 0,
        reports: page[i]?.reports ?? [],
      })),
      page: {
        limit,
        nextCursor:
          hasMore && last ? encodeCursor(secret, signature, [last.createdKey, last.id]) : null,
        hasMore,
      },
    };
  }

  async hide(id: string, reason: string, viewer: Viewer): Promise<SpotDetail> {
    const row = await withTransaction(this.#db, async (trx) => {
      const spot = await repo.findSpot(trx, id, { lock: true });
      if (!spot) throw notFound();
      const hidden = await repo.setSpotStatus(trx, id, 'hidden', reason);
      await repo.resolveReports(trx, id);
      await this.#platform.events.publish(trx, spotHidden, {
        data: { spotId: id, by: 'moderator', reason },
        subject: { type: 'spot', id },
        actorId: viewer.userId,
        ownerId: spot.ownerId,
        requestId: viewer.requestId,
      });
      return hidden;
    });
    await invalidateSpot(this.#cache, id, [row]);
    return this.#detail(row, { readyOnly: false, moderation: true });
  }

  async restore(id: string, viewer: Viewer): Promise<SpotDetail> {
    const row = await withTransaction(this.#db, async (trx) => {
      const spot = await repo.findSpot(trx, id, { lock: true });
      if (!spot) throw notFound();
      const restored = await repo.setSpotStatus(trx, id, 'visible', null);
      await repo.resolveReports(trx, id);
      await this.#platform.events.publish(trx, spotUpdated, {
        data: { spotId: id, fields: ['status'] },
        subject: { type: 'spot', id },
        actorId: viewer.userId,
        ownerId: spot.ownerId,
        requestId: viewer.requestId,
      });
      return restored;
    });
    await invalidateSpot(this.#cache, id, [row]);
    return this.#detail(row, { readyOnly: false, moderation: true });
  }

  /** For the EXPLAIN tests and the benchmark: the plan of one listing. */
  explain(filters: repo.ListFilters, order: SpotSort, limit = DEFAULT_LIMIT): Promise<string> {
    return repo.explainList(this.#db, filters, order, limit);
  }
}
