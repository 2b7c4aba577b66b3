// The public-data read routes the frontend uses, in openapi-typescript's shape, for as long as the
// public-data app is not in the generated client (clients/ts/src/schema.ts): src/api.ts uses the
// generated `paths` alone as soon as they hold these routes, and tsc then checks the frontend
// against the real document. Shapes: the app's schemas (src/apps/public-data/schemas.ts).

export interface Page {
  limit: number;
  nextCursor: string | null;
  hasMore: boolean;
}

export interface DatasetSummary {
  slug: string;
  title: string;
  description: string;
  license: string;
  source: string;
  tags: string[];
  version: number | null;
  rowCount: number | null;
  createdAt: string;
  updatedAt: string;
}

export interface Column {
  name: string;
  label: string;
  description: string;
  type: 'integer' | 'decimal' | 'boolean' | 'date' | 'timestamp' | 'geo' | 'text';
  filterable: boolean;
  sortable: boolean;
  searchable: boolean;
}

export interface RowsPage {
  version: number;
  items: Record<string, unknown>[];
  page: Page;
  facets?: Record<string, { value: unknown; count: number }[]>;
}

interface Json<T> {
  headers: Record<string, unknown>;
  content: { 'application/json': T };
}

interface Get<Query, Path, Data> {
  parameters: { query?: Query; header?: never; path: Path; cookie?: never };
  requestBody?: never;
  responses: { 200: Json<Data> };
}

interface GetWithoutPath<Query, Data> {
  parameters: { query?: Query; header?: never; path?: never; cookie?: never };
  requestBody?: never;
  responses: { 200: Json<Data> };
}

interface PathItem {
  parameters: { query?: never; header?: never; path?: never; cookie?: never };
}

export interface PublicDataPaths {
  '/api/v1/public-data/datasets': PathItem & {
    get: GetWithoutPath<
      { q?: string; tag?: string; limit?: number; cursor?: string },
      { items: DatasetSummary[]; page: Page }
    >;
  };
  '/api/v1/public-data/datasets/{slug}': PathItem & {
    get: Get<
      never,
      { slug: string },
      DatasetSummary & {
        columns: Column[];
        versions: { number: number; rowCount: number; importedAt: string }[];
      }
    >;
  };
  '/api/v1/public-data/datasets/{slug}/rows': PathItem & {
    get: Get<
      {
        limit?: number;
        cursor?: string;
        sort?: string;
        q?: string;
        near?: string;
        radiusM?: number;
        facets?: string;
        fields?: string;
        version?: number;
      },
      { slug: string },
      RowsPage
    >;
  };
}
