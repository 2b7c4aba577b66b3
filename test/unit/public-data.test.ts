// The public data app's pure parts: public names, type inference, COPY values, literals, and
// the streaming readers (a file past the cap is refused without being read whole).
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import {
  copyValue,
  fits,
  parseGeo,
  publicNames,
  TypeInference,
} from '../../src/apps/public-data/columns.ts';
import {
  csvRecords,
  ImportRefusal,
  ndjsonLines,
  ndjsonObject,
} from '../../src/apps/public-data/parse.ts';
import { literal } from '../../src/apps/public-data/query.ts';

describe('public data: names', () => {
  test('headers become safe names; empty, duplicate and reserved ones are renamed', () => {
    const { names, warnings } = publicNames([
      'Population (2020)',
      '',
      'Élan vital',
      'population_2020',
      '2021',
      'sort',
      '"; drop table x; --',
      '   ',
    ]);
    assert.deepEqual(names, [
      'population_2020',
      'column_2',
      'elan_vital',
      'population_2020_2',
      'c_2021',
      'sort_col',
      'drop_table_x',
      'column_8',
    ]);
    assert.equal(warnings.length, 3);
    for (const n of names) assert.match(n, /^[a-z_][a-z0-9_]{0,62}$/);
  });
});

describe('public data: types', () => {
  test('the first type every value fits, else text', () => {
    const cases: [string[], string][] = [
      [['1', '-2', '+3'], 'integer'],
      [['1', '2.5', '1e3'], 'decimal'],
      [['1234567890123456789'], 'decimal'],
      [['true', 'No', 'YES'], 'boolean'],
      [['2024-02-29', '2023-12-31'], 'date'],
      [['2024-02-29T10:00:00Z', '2024-01-01 00:00'], 'timestamp'],
      [['48.85,2.35', '-33.9 151.2'], 'geo'],
      [['1', 'x'], 'text'],
      [['2023-02-29'], 'text'],
      [['91,0'], 'text'],
      [['', ''], 'text'],
    ];
    for (const [values, type] of cases) {
      const inference = new TypeInference();
      for (const v of values) inference.observe(0, v);
      inference.observe(0, '');
      assert.equal(inference.typeOf(0), type, values.join('|'));
      assert.equal(inference.hasNulls(0), true);
    }
    assert.equal(fits('timestamp', '2024-01-01T24:00:00Z'), false);
    assert.deepEqual(parseGeo('48.8566, 2.3522'), [48.8566, 2.3522]);
  });

  test('COPY text values: escapes, NULL, booleans, points, UTC for zoneless timestamps', () => {
    assert.equal(copyValue('text', 'a\tb\nc\\d\re'), 'a\\tb\\nc\\\\d\\re');
    assert.equal(copyValue('text', ''), '\\N');
    assert.equal(copyValue('integer', null), '\\N');
    assert.equal(copyValue('integer', 'x'), undefined);
    assert.equal(copyValue('boolean', 'Yes'), 't');
    assert.equal(copyValue('geo', '48.5,2.25'), '(2.25,48.5)');
    assert.equal(copyValue('timestamp', '2024-01-01 10:00'), '2024-01-01 10:00Z');
    assert.equal(copyValue('timestamp', '2024-01-01T10:00:00+02:00'), '2024-01-01T10:00:00+02:00');
  });

  test('literals quote quotes and backslashes; NUL is refused', () => {
    assert.equal(literal("it's"), "'it''s'");
    assert.equal(literal('a\\b'), "E'a\\\\b'");
    assert.throws(() => literal('a\0b'));
  });
});

describe('public data: streaming readers', () => {
  /** An endless CSV: only a reader that counts bytes as they pass can stop it. */
  function endless(): { stream: Readable; pulled: () => number } {
    let n = 0;
    let bytes = 0;
    const stream = new Readable({
      read() {
        const chunk = n++ === 0 ? 'a,b\n' : '1,2\n'.repeat(4_096);
        bytes += chunk.length;
        this.push(chunk);
      },
    });
    return { stream, pulled: () => bytes };
  }

  test('a file past the cap is refused while streaming (never read whole)', async () => {
    const cap = 2 * 1024 * 1024;
    for (const reader of [csvRecords, ndjsonLines]) {
      const source = endless();
      let records = 0;
      await assert.rejects(
        (async () => {
          for await (const _ of reader(source.stream, cap)) records++;
        })(),
        (error: unknown) => error instanceof ImportRefusal && error.code === 'FILE_TOO_LARGE',
      );
      assert.ok(records > 100_000, String(records));
      // Read up to the cap and a few buffers more: the rest of the endless file never was.
      assert.ok(source.pulled() < cap + 1024 * 1024, String(source.pulled()));
      assert.ok(source.stream.destroyed);
    }
  });

  test('NDJSON objects: numbers as written, points, nested values as JSON', () => {
    const fields = ndjsonObject(
      '{"a": 0.10, "b": 12345678901234567890, "c": {"lat": 1, "lng": 2}, "d": [1, {"x": 1.50}], "e": null, "f": false}',
    );
    assert.ok(fields instanceof Map);
    assert.equal(fields.get('a'), '0.10');
    assert.equal(fields.get('b'), '12345678901234567890');
    assert.equal(fields.get('c'), '1,2');
    assert.equal(fields.get('d'), '[1,{"x":1.5}]');
    assert.equal(fields.get('e'), null);
    assert.equal(fields.get('f'), 'false');
    assert.equal(typeof ndjsonObject('[1]'), 'string');
    assert.equal(typeof ndjsonObject('{'), 'string');
  });
});
