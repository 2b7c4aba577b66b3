import assert from 'node:assert/strict';
import { test } from 'node:test';
import { areaOf, render, summarise } from '../../scripts/coverage-summary.ts';

const LCOV = `TN:
SF:src/platform/db/cursor.ts
FNF:4
FNH:3
BRF:10
BRH:5
LF:100
LH:90
end_of_record
SF:src/platform/db/list-query.ts
FNF:0
FNH:0
LF:100
LH:50
end_of_record
SF:src/apps/shop/orders.ts
LF:10
LH:10
end_of_record
SF:src/main.ts
LF:40
LH:0
end_of_record
`;

test('areaOf: platform areas and apps by folder, the rest of src together', () => {
  assert.equal(areaOf('src/platform/db/cursor.ts'), 'platform/db');
  assert.equal(areaOf('src/apps/public-data/query/filters.ts'), 'apps/public-data');
  assert.equal(areaOf('src/main.ts'), 'src');
  assert.equal(areaOf('src/migrations/202611220001_platform_base.ts'), 'src');
});

test('summarise sums hit and found per area; render puts the lowest first and the total last', () => {
  const areas = summarise(LCOV);
  assert.deepEqual(areas.get('platform/db'), {
    lines: [140, 200],
    branches: [5, 10],
    functions: [3, 4],
  });
  const lines = render(areas).split('\n');
  assert.deepEqual(
    lines.slice(1).map((l) => l.split(/\s+/)[0]),
    ['src', 'platform/db', 'apps/shop', 'all'],
  );
  assert.match(lines.at(-1) ?? '', /^all of src\s+60\.00%\s+50\.00%\s+75\.00%\s+150\/250$/);
  assert.match(lines[2] ?? '', /platform\/db\s+70\.00%\s+50\.00%\s+75\.00%\s+140\/200/);
});
