// Writes docs/erd.md: Mermaid entity-relationship diagrams read from a database migrated with the
// platform's migrations and every app's (the catalog, not the migration sources, so what is drawn
// is what PostgreSQL holds). One diagram for the platform, one per app with the platform tables it
// references. test/integration/repo-erd.test.ts fails when the file is stale.
//
//   npm run erd            # rewrite docs/erd.md
//   npm run erd -- --check # exit 1 when docs/erd.md differs from what the migrations give
//
// Uses the tests' PostgreSQL (TEST_DATABASE_URL, else 127.0.0.1:5432/test, else an embedded server,
// as `npm test` does) and the tests' migrated template databases; drops what it creates.
// The output depends only on the migrations: tables, columns, keys and relationships are sorted.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import * as prettier from 'prettier';
import { allApps } from '../src/apps/index.ts';
import { allMigrations, platformMigrations } from '../src/migrations/index.ts';
import type { AppModule } from '../src/platform/modules/index.ts';
import { createTestDatabase } from '../test/helpers/db.ts';
import { globalSetup, globalTeardown } from '../test/helpers/global-setup.ts';

export const ERD_FILE = 'docs/erd.md';
/** Migration bookkeeping, not the model. */
const SKIPPED = new Set(['kysely_migration', 'kysely_migration_lock']);

export interface Column {
  name: string;
  type: string;
  notNull: boolean;
}
export interface ForeignKey {
  name: string;
  table: string;
  columns: string[];
  references: string;
  referencedColumns: string[];
}
export interface Schema {
  tables: Map<string, Column[]>;
  primaryKeys: Map<string, string[]>;
  /** Column sets with a unique constraint or a plain unique index (no expression, no predicate). */
  uniques: Map<string, string[][]>;
  foreignKeys: ForeignKey[];
}

/**
 * Not a table an extension made (PostGIS's `spatial_ref_sys`, where the server has PostGIS): the
 * diagram is of the migrations' tables, whatever the server has installed.
 */
const NOT_EXTENSION = `not exists (select 1 from pg_depend d
  where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')`;

/** Reads the public schema's tables (not partitions), columns, keys and foreign keys. */
export async function readSchema(client: pg.Client): Promise<Schema> {
  const columns = await client.query<{
    table: string;
    name: string;
    type: string;
    not_null: boolean;
  }>(
    `select c.relname as table, a.attname as name, format_type(a.atttypid, a.atttypmod) as type,
            a.attnotnull as not_null
       from pg_attribute a
       join pg_class c on c.oid = a.attrelid
       join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and ${NOT_EXTENSION} and c.relkind in ('r', 'p') and not c.relispartition
        and a.attnum > 0 and not a.attisdropped
      order by c.relname, a.attnum`,
  );
  const keys = await client.query<{
    name: string;
    type: 'p' | 'f';
    table: string;
    references: string | null;
    columns: string[];
    referenced: string[];
  }>(
    `select con.conname as name, con.contype as type, c.relname as table, f.relname as references,
            array(select a.attname::text from unnest(con.conkey) with ordinality k(n, i)
                    join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.n order by k.i) as columns,
            array(select a.attname::text from unnest(con.confkey) with ordinality k(n, i)
                    join pg_attribute a on a.attrelid = con.confrelid and a.attnum = k.n order by k.i) as referenced
       from pg_constraint con
       join pg_class c on c.oid = con.conrelid
       join pg_namespace n on n.oid = c.relnamespace
       left join pg_class f on f.oid = con.confrelid
      where n.nspname = 'public' and ${NOT_EXTENSION} and con.contype in ('p', 'f') and con.conparentid = 0
        and not c.relispartition
      order by c.relname, con.conname`,
  );
  const uniques = await client.query<{ table: string; columns: string[] }>(
    `select c.relname as table,
            array(select a.attname::text from unnest(i.indkey::int2[]) with ordinality k(n, o)
                    join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.n order by k.o) as columns
       from pg_index i
       join pg_class c on c.oid = i.indrelid
       join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and ${NOT_EXTENSION} and i.indisunique and not i.indisprimary
        and i.indexprs is null and i.indpred is null and not c.relispartition
      order by c.relname, 2`,
  );
  const schema: Schema = {
    tables: new Map(),
    primaryKeys: new Map(),
    uniques: new Map(),
    foreignKeys: [],
  };
  for (const row of columns.rows) {
    if (SKIPPED.has(row.table)) continue;
    const list = schema.tables.get(row.table) ?? [];
    list.push({ name: row.name, type: row.type, notNull: row.not_null });
    schema.tables.set(row.table, list);
  }
  for (const row of keys.rows) {
    if (SKIPPED.has(row.table)) continue;
    if (row.type === 'p') schema.primaryKeys.set(row.table, row.columns);
    else if (row.references) {
      schema.foreignKeys.push({
        name: row.name,
        table: row.table,
        columns: row.columns,
        references: row.references,
        referencedColumns: row.referenced,
      });
    }
  }
  for (const row of uniques.rows) {
    const list = schema.uniques.get(row.table) ?? [];
    list.push(row.columns);
    schema.uniques.set(row.table, list);
  }
  return schema;
}

const SHORT_TYPES: [RegExp, string][] = [
  [/^timestamp\b.* with time zone/, 'timestamptz'],
  [/^timestamp\b.* without time zone/, 'timestamp'],
  [/^time\b.* with time zone/, 'timetz'],
  [/^time\b.* without time zone/, 'time'],
  [/^character varying/, 'varchar'],
  [/^character\b/, 'char'],
  [/^double precision/, 'float8'],
  [/^bit varying/, 'varbit'],
];

/** A column type as one Mermaid word: short names, no modifiers (`varchar(200)` is `varchar`). */
export function mermaidType(type: string): string {
  const array = type.endsWith('[]');
  let t = type.replace(/\[\]$/, '').replace(/"/g, '');
  for (const [pattern, short] of SHORT_TYPES) {
    if (pattern.test(t)) {
      t = short;
      break;
    }
  }
  t = t
    .replace(/\(.*\)/, '')
    .replace(/^.*\./, '')
    .replace(/[^A-Za-z0-9_]/g, '_');
  return array ? `${t}[]` : t;
}

const sameSet = (a: string[], b: string[]) =>
  a.length === b.length && a.every((c) => b.includes(c));

function isUnique(schema: Schema, table: string, columns: string[]): boolean {
  const pk = schema.primaryKeys.get(table);
  if (pk && sameSet(pk, columns)) return true;
  return (schema.uniques.get(table) ?? []).some((u) => sameSet(u, columns));
}

/**
 * One Mermaid erDiagram of `tables` (with their columns) and the foreign keys that join them to each
 * other and to `stubs` (tables of another section, named by the relationship only).
 */
export function diagram(schema: Schema, tables: string[], stubs: string[] = []): string {
  const lines = ['```mermaid', 'erDiagram'];
  const drawn = new Set([...tables, ...stubs]);
  for (const table of [...tables].sort()) {
    const pk = schema.primaryKeys.get(table) ?? [];
    const singleUniques = (schema.uniques.get(table) ?? []).filter((u) => u.length === 1).flat();
    const fkColumns = new Set(
      schema.foreignKeys.filter((f) => f.table === table).flatMap((f) => f.columns),
    );
    lines.push(`  ${table} {`);
    for (const column of schema.tables.get(table) ?? []) {
      const keys = [
        pk.includes(column.name) ? 'PK' : '',
        fkColumns.has(column.name) ? 'FK' : '',
        singleUniques.includes(column.name) && !(pk.length === 1 && pk[0] === column.name)
          ? 'UK'
          : '',
      ].filter(Boolean);
      const comment = column.notNull ? '' : ' "null"';
      lines.push(
        `    ${mermaidType(column.type)} ${column.name}${keys.length > 0 ? ` ${keys.join(', ')}` : ''}${comment}`,
      );
    }
    lines.push('  }');
  }
  // Referenced tables of another section (stubs) appear through their relationship lines alone.
  const relationships = schema.foreignKeys
    .filter((f) => drawn.has(f.table) && drawn.has(f.references))
    .filter((f) => tables.includes(f.table) || tables.includes(f.references))
    .sort(
      (a, b) =>
        a.references.localeCompare(b.references) ||
        a.table.localeCompare(b.table) ||
        a.name.localeCompare(b.name),
    );
  for (const fk of relationships) {
    const columns = schema.tables.get(fk.table) ?? [];
    const required = fk.columns.every((c) => columns.find((col) => col.name === c)?.notNull);
    const parent = required ? '||' : '|o';
    const child = isUnique(schema, fk.table, fk.columns) ? 'o|' : 'o{';
    lines.push(`  ${fk.references} ${parent}--${child} ${fk.table} : "${fk.columns.join(', ')}"`);
  }
  lines.push('```');
  return lines.join('\n');
}

export interface Section {
  title: string;
  description: string;
  tables: string[];
}

/** docs/erd.md's text: the platform's diagram, then each app's (formatted as Prettier would). */
export async function renderErd(schema: Schema, sections: Section[]): Promise<string> {
  const parts = [
    '# Database schema',
    '<!-- Generated by `npm run erd` (scripts/erd.ts) from a database migrated with every module. Do not edit by hand. -->',
    'Entity-relationship diagrams of the `public` schema, read from PostgreSQL\'s catalog after every migration of the platform and the apps has run. `PK`, `FK` and `UK` (a one-column unique constraint or index) mark keys; `"null"` marks a nullable column; a line joins a foreign key to the table it references (`||` required, `|o` optional; `o{` many, `o|` at most one). Types are shortened (`varchar` for `character varying(n)`). The job queue\'s tables (schema `pgboss`) belong to pg-boss and the migration bookkeeping (`kysely_migration`) to Kysely: neither is drawn. `test/integration/repo-erd.test.ts` fails when this file is stale.',
  ];
  for (const section of sections) {
    const own = new Set(section.tables);
    const stubs = [
      ...new Set(
        schema.foreignKeys
          .filter((f) => own.has(f.table) && !own.has(f.references))
          .map((f) => f.references),
      ),
    ];
    parts.push(`## ${section.title}`, section.description, diagram(schema, section.tables, stubs));
  }
  const options = (await prettier.resolveConfig(ERD_FILE)) ?? {};
  return prettier.format(`${parts.join('\n\n')}\n`, { ...options, parser: 'markdown' });
}

async function tablesOf(migrations: Parameters<typeof createTestDatabase>[0]): Promise<{
  tables: Set<string>;
  schema: Schema;
}> {
  const database = await createTestDatabase(migrations);
  const client = new pg.Client(database.url);
  await client.connect();
  try {
    const schema = await readSchema(client);
    return { tables: new Set(schema.tables.keys()), schema };
  } finally {
    await client.end();
    await database.drop();
  }
}

const titleOf = (app: AppModule) =>
  app.name.replace(
    /(^|-)([a-z])/g,
    (_, dash: string, c: string) => `${dash ? ' ' : ''}${c.toUpperCase()}`,
  );

/** Migrates databases (every module; the platform alone; each app with the platform) and renders. */
export async function generateErd(): Promise<string> {
  const full = await tablesOf({ migrations: allMigrations(allApps) });
  const platform = await tablesOf({ migrations: platformMigrations });
  const sections: Section[] = [
    {
      title: 'Platform',
      description: "The tables of the platform's own migrations (`src/migrations/`).",
      tables: [...platform.tables].filter((t) => full.tables.has(t)).sort(),
    },
  ];
  const claimed = new Set(platform.tables);
  for (const app of [...allApps].sort((a, b) => a.name.localeCompare(b.name))) {
    const withApp = await tablesOf({ migrations: allMigrations([app]) });
    const own = [...withApp.tables]
      .filter((t) => !platform.tables.has(t) && full.tables.has(t))
      .sort();
    own.forEach((t) => claimed.add(t));
    if (own.length === 0) continue;
    sections.push({
      title: `App: ${titleOf(app)}`,
      description: `The tables of the ${app.name} app's migrations (\`src/apps/${app.name}/\`), with the platform tables they reference (named, their columns are in the platform's diagram).`,
      tables: own,
    });
  }
  const rest = [...full.tables].filter((t) => !claimed.has(t)).sort();
  if (rest.length > 0) {
    sections.push({
      title: 'Other tables',
      description: 'Tables that only the migrations of several modules together create.',
      tables: rest,
    });
  }
  return renderErd(full.schema, sections);
}

async function main(): Promise<number> {
  const check = process.argv.includes('--check');
  await globalSetup();
  try {
    const text = await generateErd();
    const path = join(process.cwd(), ERD_FILE);
    if (check) {
      let current = '';
      try {
        current = readFileSync(path, 'utf8');
      } catch {
        // Missing counts as stale.
      }
      if (current === text) return 0;
      console.error(`${ERD_FILE} is stale: run npm run erd`);
      return 1;
    }
    writeFileSync(path, text);
    console.log(`wrote ${ERD_FILE}`);
    return 0;
  } finally {
    await globalTeardown();
  }
}

if (import.meta.main) process.exitCode = await main();
