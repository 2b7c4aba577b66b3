import { Type } from 'typebox';
import { API_PREFIX } from '../../platform/http/index.ts';
import { defineModule } from '../../platform/modules/index.ts';
import * as createSpots from './migrations/202612071000_spots_create.ts';
import * as searchTiers from './migrations/202612080400_spots_search_tiers.ts';
import * as postgis from './migrations/202612090100_spots_postgis.ts';
import { SPOTS_MODERATE, spotsEvents } from './spots.events.ts';
import { spotPicture } from './spots.files.ts';
import { recountFavouritesJob } from './spots.jobs.ts';
import { pictureFailedTemplate } from './spots.mail.ts';
import { registerSpotsRoutes } from './spots.routes.ts';
import { SPOT_LANGUAGES } from './spots.schemas.ts';
import { SpotsService } from './spots.service.ts';
import { pictureFailedSubscriber, pictureReadySubscriber } from './spots.subscribers.ts';

export { SpotsService } from './spots.service.ts';
export { SPOTS_MODERATE } from './spots.events.ts';

const int = (def: number, min: number, max: number, description: string) =>
  Type.Integer({ default: def, minimum: min, maximum: max, description });

/** PicASpot: places people photograph, with pictures, found on a map, by text and nearby. */
export const spotsApp = defineModule({
  name: 'spots',
  description: 'Spots: places and their pictures, found on a map, by text and nearby.',
  dependsOn: ['identity', 'events', 'files'],
  prefix: `${API_PREFIX}/spots`,
  config: Type.Object({
    SPOTS_MAX_RADIUS_M: int(50_000, 1, 20_000_000, 'Largest `radiusM` of a nearby search, metres.'),
    SPOTS_DEFAULT_RADIUS_M: int(2_000, 1, 20_000_000, '`radiusM` when `near` comes without it.'),
    SPOTS_BBOX_MAX_RESULTS: int(
      500,
      1,
      500,
      'Most spots one map-viewport (`bbox`) answer holds; more sets `truncated`.',
    ),
    SPOTS_CREATE_PER_HOUR: int(30, 1, 100_000, 'Spots one user may create per hour.'),
    SPOTS_REPORTS_PER_HOUR: int(20, 1, 100_000, 'Reports one user may file per hour.'),
    SPOTS_REPORT_HIDE_THRESHOLD: int(
      3,
      1,
      1_000,
      'Distinct users’ reports that take a spot out of public reads, pending review.',
    ),
    SPOTS_MODERATE_NEW_ACCOUNTS: Type.Boolean({
      default: false,
      description:
        'New accounts’ spots wait for a moderator (until the account is `SPOTS_TRUSTED_AFTER_DAYS` days old and has `SPOTS_TRUSTED_AFTER` public spots).',
    }),
    SPOTS_TRUSTED_AFTER: int(
      3,
      1,
      1_000,
      'Public spots an account needs before its new spots skip review (with `SPOTS_MODERATE_NEW_ACCOUNTS`).',
    ),
    SPOTS_TRUSTED_AFTER_DAYS: int(
      7,
      0,
      3_650,
      'Days an account must exist before its new spots skip review (with `SPOTS_MODERATE_NEW_ACCOUNTS`; 0: age not considered).',
    ),
    SPOTS_CACHE_TTL_S: int(60, 1, 86_400, 'Longest a cached spot or map viewport may be stale.'),
    SPOTS_FAVOURITE_RECOUNT_DELAY_S: int(
      5,
      0,
      3_600,
      'Delay before a spot’s favourite counter is recounted after a change.',
    ),
    SPOTS_SEARCH_LANGUAGE: Type.Enum(SPOT_LANGUAGES, {
      default: 'english',
      description: 'Text search configuration of queries and of spots created without `language`.',
    }),
    SPOTS_MAX_PICTURES: int(20, 1, 200, 'Pictures one spot may have.'),
    SPOTS_GEO: Type.Union(
      [Type.Literal('auto'), Type.Literal('earthdistance'), Type.Literal('postgis')],
      {
        default: 'auto',
        description:
          'Radius and nearest-first queries: `earthdistance` (contrib, on every PostgreSQL), `postgis` (needs PostGIS at migration), `auto`: PostGIS when the migration installed it.',
      },
    ),
  }),
  migrations: {
    '202612071000_spots_create': createSpots,
    '202612080400_spots_search_tiers': searchTiers,
    '202612090100_spots_postgis': postgis,
  },
  permissions: [
    {
      name: SPOTS_MODERATE,
      description:
        'Review reported and new accounts’ spots; hide, restore, edit or delete any spot.',
      roles: ['moderator', 'admin'],
    },
  ],
  jobs: [recountFavouritesJob],
  mailTemplates: [pictureFailedTemplate],
  events: spotsEvents,
  subscribers: [pictureReadySubscriber, pictureFailedSubscriber],
  filePurposes: [spotPicture],
  routes: (app, { platform, config }) =>
    registerSpotsRoutes(
      app,
      new SpotsService(platform, {
        maxRadiusM: config.SPOTS_MAX_RADIUS_M,
        defaultRadiusM: config.SPOTS_DEFAULT_RADIUS_M,
        bboxMaxResults: config.SPOTS_BBOX_MAX_RESULTS,
        reportHideThreshold: config.SPOTS_REPORT_HIDE_THRESHOLD,
        moderateNewAccounts: config.SPOTS_MODERATE_NEW_ACCOUNTS,
        trustedAfter: config.SPOTS_TRUSTED_AFTER,
        trustedAfterDays: config.SPOTS_TRUSTED_AFTER_DAYS,
        cacheTtlS: config.SPOTS_CACHE_TTL_S,
        recountDelayS: config.SPOTS_FAVOURITE_RECOUNT_DELAY_S,
        searchLanguage: config.SPOTS_SEARCH_LANGUAGE,
        maxPictures: config.SPOTS_MAX_PICTURES,
        geo: config.SPOTS_GEO,
      }),
      {
        createPerHour: config.SPOTS_CREATE_PER_HOUR,
        reportsPerHour: config.SPOTS_REPORTS_PER_HOUR,
      },
    ),
});
