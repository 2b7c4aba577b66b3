// The example frontend: lists the published datasets and browses a dataset's rows with filters,
// facets and keyset pages, all through the generated client. No framework: the point is the calls.
import { ApiError, NetworkError } from '../../../clients/ts/src/index.ts';
import { createApi } from './api.ts';
import type { ApiPaths } from './api.ts';

// The API's origin comes from the build's environment (Vercel: a project variable per
// environment); without one, the page's own origin (the API behind the same host).
const baseUrl = import.meta.env.VITE_API_BASE_URL ?? window.location.origin;
const api = createApi(baseUrl);

type Get<Path extends keyof ApiPaths> = ApiPaths[Path] extends {
  get: { responses: { 200: { content: { 'application/json': infer T } } } };
}
  ? T
  : never;
type DatasetSummary = Get<'/api/v1/public-data/datasets'>['items'][number];
type Column = Get<'/api/v1/public-data/datasets/{slug}'>['columns'][number];
type RowsPage = Get<'/api/v1/public-data/datasets/{slug}/rows'>;

interface Filter {
  column: string;
  op: string;
  value: string;
}

const state = {
  slug: '',
  columns: [] as Column[],
  filters: [] as Filter[],
  /** The cursor of each page shown so far (undefined: the first), for Previous. */
  cursors: [] as (string | undefined)[],
  nextCursor: null as string | null,
  /** Answers of an older request are dropped (a fast click must not show stale rows). */
  generation: 0,
};

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const el = <K extends keyof HTMLElementTagNameMap>(
  tag: K,
  text?: string,
  attrs: Record<string, string> = {},
): HTMLElementTagNameMap[K] => {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
};

function showStatus(text: string, error?: unknown): void {
  const status = $('status');
  status.textContent = text;
  status.classList.toggle('error', error !== undefined);
  if (error instanceof ApiError) status.dataset.errorCode = error.code;
  else if (error instanceof NetworkError) status.dataset.errorCode = 'NETWORK';
  else delete status.dataset.errorCode;
}

/** What the reader is told: the problem's code and detail, and the id to quote. */
function describe(error: unknown): string {
  if (error instanceof ApiError)
    return `${error.code}: ${error.problem?.detail ?? error.message}${error.requestId ? ` (request ${error.requestId})` : ''}`;
  if (error instanceof NetworkError)
    return 'The API did not answer: offline, or this site is not one of the origins the API allows (CORS).';
  return String(error);
}

async function loadDatasets(q?: string): Promise<void> {
  showStatus('Loading datasets…');
  try {
    const list = await api.GET('/api/v1/public-data/datasets', {
      params: { query: q ? { q } : {} },
    });
    renderDatasets(list.items);
    showStatus(`${String(list.items.length)} dataset(s)`);
  } catch (error) {
    showStatus(describe(error), error);
  }
}

function renderDatasets(items: DatasetSummary[]): void {
  const list = $('datasets');
  list.replaceChildren(
    ...items.map((d) => {
      const button = el('button', d.title, { type: 'button', 'data-slug': d.slug });
      button.addEventListener('click', () => void openDataset(d.slug));
      const item = el('li');
      const rows = d.rowCount === null ? 'no version yet' : `${d.rowCount.toLocaleString()} rows`;
      item.append(button, el('span', ` ${rows}`, { class: 'muted' }));
      return item;
    }),
  );
}

async function openDataset(slug: string): Promise<void> {
  showStatus('Loading dataset…');
  try {
    const dataset = await api.GET('/api/v1/public-data/datasets/{slug}', {
      params: { path: { slug } },
    });
    Object.assign(state, { slug, columns: dataset.columns, filters: [], cursors: [undefined] });
    $('dataset').hidden = false;
    $('dataset-title').textContent = dataset.title;
    $('dataset-meta').textContent =
      `${dataset.description} · ${dataset.license} · version ${String(dataset.version ?? '—')} · updated ${new Date(dataset.updatedAt).toLocaleString()}`;
    const select = $<HTMLFormElement>('filter').elements.namedItem('column') as HTMLSelectElement;
    select.replaceChildren(
      ...dataset.columns
        .filter((c) => c.filterable)
        .map((c) => el('option', c.label, { value: c.name })),
    );
    await loadRows();
  } catch (error) {
    showStatus(describe(error), error);
  }
}

/** Filters as the API reads them: `column=value` for equality, `column[op]=value` otherwise. */
function filterQuery(): Record<string, string> {
  return Object.fromEntries(
    state.filters.map((f) => [f.op === 'eq' ? f.column : `${f.column}[${f.op}]`, f.value]),
  );
}

/** Text columns one may filter on get facets (the top values under the current filters). */
const facetColumns = () =>
  state.columns
    .filter((c) => c.filterable && c.type === 'text')
    .slice(0, 2)
    .map((c) => c.name);

async function loadRows(): Promise<void> {
  const generation = ++state.generation;
  const cursor = state.cursors.at(-1);
  showStatus('Loading rows…');
  try {
    const facets = facetColumns();
    const page = await api.GET('/api/v1/public-data/datasets/{slug}/rows', {
      params: {
        path: { slug: state.slug },
        query: {
          limit: 20,
          ...filterQuery(),
          ...(facets.length > 0 ? { facets: facets.join(',') } : {}),
          ...(cursor === undefined ? {} : { cursor }),
        },
      },
    });
    if (generation !== state.generation) return;
    state.nextCursor = page.page.nextCursor;
    renderRows(page);
    showStatus(`${String(page.items.length)} row(s) on this page`);
  } catch (error) {
    if (generation === state.generation) showStatus(describe(error), error);
  }
}

/** A cell as text: JSON values as the API gives them (a geo point is an object). */
function cellText(value: unknown): string {
  if (value === null || value === undefined) return '—';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

function renderRows(page: RowsPage): void {
  const names = state.columns.map((c) => c.name);
  const head = el('tr');
  head.append(...state.columns.map((c) => el('th', c.label, { scope: 'col' })));
  $('rows-head').replaceChildren(head);
  $('rows').replaceChildren(
    ...page.items.map((row) => {
      const tr = el('tr');
      tr.append(...names.map((n) => el('td', cellText(row[n]))));
      return tr;
    }),
  );
  $('filters').replaceChildren(
    ...state.filters.map((f, i) => {
      const chip = el('li', `${f.column} ${f.op} ${f.value} `);
      const remove = el('button', '×', { type: 'button', 'aria-label': 'Remove filter' });
      remove.addEventListener('click', () => {
        state.filters.splice(i, 1);
        state.cursors = [undefined];
        void loadRows();
      });
      chip.append(remove);
      return chip;
    }),
  );
  $('facets').replaceChildren(
    ...Object.entries(page.facets ?? {}).map(([column, values]) => {
      const box = el('div', undefined, { 'data-facet': column });
      box.append(el('h3', column));
      const list = el('ul');
      list.append(
        ...values.map(({ value, count }) => {
          const item = el('li');
          const button = el('button', `${cellText(value)} (${String(count)})`, { type: 'button' });
          button.addEventListener('click', () =>
            addFilter({ column, op: 'eq', value: cellText(value) }),
          );
          item.append(button);
          return item;
        }),
      );
      box.append(list);
      return box;
    }),
  );
  $<HTMLButtonElement>('prev').disabled = state.cursors.length <= 1;
  $<HTMLButtonElement>('next').disabled = state.nextCursor === null;
  $('page-info').textContent = `Page ${String(state.cursors.length)}`;
}

function addFilter(filter: Filter): void {
  state.filters.push(filter);
  state.cursors = [undefined];
  void loadRows();
}

$('api-base').textContent = baseUrl;
$('search').addEventListener('submit', (event) => {
  event.preventDefault();
  const q = new FormData(event.target as HTMLFormElement).get('q');
  void loadDatasets(typeof q === 'string' && q !== '' ? q : undefined);
});
$('filter').addEventListener('submit', (event) => {
  event.preventDefault();
  const data = new FormData(event.target as HTMLFormElement);
  const text = (name: string) => {
    const value = data.get(name);
    return typeof value === 'string' ? value : '';
  };
  addFilter({ column: text('column'), op: text('op'), value: text('value') });
});
$('next').addEventListener('click', () => {
  if (state.nextCursor === null) return;
  state.cursors.push(state.nextCursor);
  void loadRows();
});
$('prev').addEventListener('click', () => {
  if (state.cursors.length <= 1) return;
  state.cursors.pop();
  void loadRows();
});
void loadDatasets();
