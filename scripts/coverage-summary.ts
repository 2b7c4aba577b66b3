// Prints the coverage of `npm test` per area (src/platform/<area>, src/apps/<app>, the rest of src/)
// from coverage/lcov.info, lowest line coverage first: the per-file table the test runner prints is
// ~400 lines long, this is the part a reviewer reads. The thresholds themselves are enforced by the
// test runner (--test-coverage-lines and friends in package.json's "test"), not here.
//
//   node scripts/coverage-summary.ts [coverage/lcov.info]
//
// Hand-written because the lcov format is a handful of `KEY:value` lines per file and every lcov
// tool on the registry brings a report generator this does not need.
import { existsSync, readFileSync } from 'node:fs';

export interface Counts {
  lines: [hit: number, found: number];
  branches: [hit: number, found: number];
  functions: [hit: number, found: number];
}

/** The area a source file belongs to: `platform/<area>`, `apps/<app>` or `src` for the rest. */
export function areaOf(file: string): string {
  const parts = file.replace(/^\.?\//, '').split('/');
  if (parts[0] === 'src' && (parts[1] === 'platform' || parts[1] === 'apps') && parts.length > 3)
    return `${parts[1]}/${parts[2]}`;
  return parts[0] === 'src' ? 'src' : (parts[0] ?? file);
}

/** Sums the LH/LF, BRH/BRF and FNH/FNF records of an lcov file per area. */
export function summarise(lcov: string): Map<string, Counts> {
  const areas = new Map<string, Counts>();
  let current: Counts | undefined;
  for (const line of lcov.split('\n')) {
    const colon = line.indexOf(':');
    const key = colon < 0 ? line.trim() : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).trim();
    if (key === 'SF') {
      const area = areaOf(value);
      current = areas.get(area);
      if (!current) {
        current = { lines: [0, 0], branches: [0, 0], functions: [0, 0] };
        areas.set(area, current);
      }
      continue;
    }
    if (!current) continue;
    const n = Number(value);
    if (key === 'LH') current.lines[0] += n;
    else if (key === 'LF') current.lines[1] += n;
    else if (key === 'BRH') current.branches[0] += n;
    else if (key === 'BRF') current.branches[1] += n;
    else if (key === 'FNH') current.functions[0] += n;
    else if (key === 'FNF') current.functions[1] += n;
    else if (key === 'end_of_record') current = undefined;
  }
  return areas;
}

function percent([hit, found]: [number, number]): number {
  return found === 0 ? 100 : (100 * hit) / found;
}

/** The summary table, lowest line coverage first, with the total last. */
export function render(areas: Map<string, Counts>): string {
  const total: Counts = { lines: [0, 0], branches: [0, 0], functions: [0, 0] };
  for (const c of areas.values()) {
    for (const k of ['lines', 'branches', 'functions'] as const) {
      total[k][0] += c[k][0];
      total[k][1] += c[k][1];
    }
  }
  const rows = [...areas].sort(
    ([a, x], [b, y]) => percent(x.lines) - percent(y.lines) || a.localeCompare(b),
  );
  rows.push(['all of src', total]);
  const width = Math.max(...rows.map(([name]) => name.length), 4);
  const cell = (c: [number, number]) => `${percent(c).toFixed(2).padStart(6)}%`;
  const out = [`${'area'.padEnd(width)}   lines  branches  functions   lines hit/found`];
  for (const [name, c] of rows) {
    out.push(
      `${name.padEnd(width)} ${cell(c.lines)}   ${cell(c.branches)}    ${cell(c.functions)}   ${String(c.lines[0])}/${String(c.lines[1])}`,
    );
  }
  return out.join('\n');
}

if (import.meta.main) {
  const file = process.argv[2] ?? 'coverage/lcov.info';
  if (!existsSync(file)) {
    process.stderr.write(`coverage-summary: ${file} not found (npm test writes it)\n`);
    process.exit(1);
  }
  process.stdout.write(
    `Coverage by area (${file}):\n${render(summarise(readFileSync(file, 'utf8')))}\n`,
  );
}
