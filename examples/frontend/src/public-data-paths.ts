// The public-data read routes the frontend uses, in openapi-typescript's shape, for as long as the
// public-data app is not in the generated client (clients/ts/src/schema.ts). When it is, delete
// this file and use `paths` alone (src/api.ts): tsc then shows every place the real API differs.
// Shapes: issue 20's contract, as test/fixtures/frontend/public-data-fixture.ts serves them.

export type Cell = string | number | boolean | null;

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
  rowCount: number;
  version: number;
  updatedAt: string;
}

export interface Column {
  name: string;
  type: 'integer' | 'decimal' | 'text' | 'timestamp' | 'boolean';
  label: string;
  filterable: boolean;
  sortable: boolean;
}

export interface RowsPage {
  items: Record<string, Cell>[];
  page: Page;
  facets?: Record<string, { value: Cell; count: number }[]>;
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

export interface PublicDataPaths {
  '/api/v1/public-data/datasets': {
    parameters: { query?: never; header?: never; path?: never; cookie?: never };
    get: GetWithoutPath<
      { q?: string; tag?: string; limit?: number; cursor?: string },
      { items: DatasetSummary[]; page: Page }
    >;
  };
  '/api/v1/public-data/datasets/{slug}': {
    parameters: { query?: never; header?: never; path?: never; cookie?: never };
    get: Get<never, { slug: string }, DatasetSummary & { columns: Column[] }>;
  };
  '/api/v1/public-data/datasets/{slug}/rows': {
    parameters: { query?: never; header?: never; path?: never; cookie?: never };
    get: Get<
      {
        limit?: number;
        cursor?: string;
        sort?: string;
        fields?: string;
        facets?: string;
        /** Filters: `column=value`, `column[op]=value`. */
        [filter: string]: string | number | undefined;
      },
      { slug: string },
      RowsPage
    >;
  };
}
