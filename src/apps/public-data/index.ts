import { defineFilePurpose } from '../../platform/files/index.ts';
import { defineModule } from '../../platform/modules/index.ts';
import { PublicDataCodes } from './errors.ts';
import { importJob } from './import.ts';
import * as createTables from './migrations/202612071300_public_data_create.ts';
import { DATASETS_MANAGE, registerPublicDataRoutes } from './routes.ts';
import { DATASET_PURPOSE, PublicDataService } from './service.ts';
import { PublicDataConfig, publicDataSettings, type PublicDataSettings } from './settings.ts';

export { PublicDataCodes, DATASETS_MANAGE, DATASET_PURPOSE };

/**
 * A dataset file (CSV or NDJSON) its publisher uploads, read by the import job only. Text has no
 * magic number: the files area decides these types from the content (docs/files.md).
 */
export const datasetFilePurpose = defineFilePurpose({
  name: DATASET_PURPOSE,
  description: 'A dataset to publish: CSV or NDJSON (UTF-8), read by the import job.',
  kind: 'document',
  maxBytes: 1_073_741_824,
  contentTypes: ['text/csv', 'application/x-ndjson'],
  read: 'owner',
});

/** Public data: datasets published from CSV/NDJSON files and read by anyone, cacheable. */
export const publicDataApp = defineModule({
  name: 'public-data',
  description:
    'Public data: datasets imported from CSV or NDJSON, read without an account (filters, sort, search, facets, exports), cacheable by a CDN.',
  dependsOn: ['identity', 'events', 'files'],
  config: PublicDataConfig,
  parseConfig: (values): PublicDataSettings => publicDataSettings(values),
  tags: [
    {
      name: 'public-data',
      description:
        'Published datasets: public reads (no account; `X-API-Key` for partner limits) and publishing (`datasets:manage`).',
    },
  ],
  migrations: { '202612071300_public_data_create': createTables },
  permissions: [
    {
      name: DATASETS_MANAGE,
      description:
        'Create, edit and delete public datasets, import their versions, issue API keys.',
      roles: ['admin'],
    },
  ],
  filePurposes: [datasetFilePurpose],
  jobs: ({ config }) => [importJob(config)],
  routes: async (app, { platform, config }) => {
    const service = new PublicDataService(platform, config);
    app.addHook('onClose', () => service.keys.close());
    await registerPublicDataRoutes(app, service, config);
  },
});
