// The dependency audit CI runs: `npm audit --json`, less the findings accepted in
// audit-allowlist.json, fails on any high or critical advisory left.
//
//   node scripts/audit-check.ts                    # runs npm audit
//   node scripts/audit-check.ts --report file.json # checks a report saved before (offline)
//
// Exit 0: nothing high or critical outside the allowlist. Exit 1: such a finding, an allowlist entry
// past its expiry date, or an allowlist that is not valid. When the registry has no audit endpoint
// or cannot be reached, the audit cannot run: that is exit 0 with a warning, or exit 1 when
// AUDIT_REQUIRED=1 (the hosted CI sets it: its registry answers). The allowlist is checked
// (expiry, shape) either way, so an expired acceptance fails even offline.
//
// Hand-written rather than audit-ci or better-npm-audit (neither is installed here): the report
// shape is npm's own (auditReportVersion 2) and the filter is a few lines; the rules are tested on
// saved reports in test/unit/repo-audit-check.test.ts.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';

export type Severity = 'info' | 'low' | 'moderate' | 'high' | 'critical';
const BLOCKING: ReadonlySet<Severity> = new Set(['high', 'critical']);
/** An acceptance is re-reviewed at least once a year. */
export const MAX_ALLOW_DAYS = 366;

export interface AllowEntry {
  /** The advisory: its GHSA id (`GHSA-xxxx-xxxx-xxxx`) or npm's numeric advisory id. */
  id: string;
  /** The vulnerable package the advisory is about. */
  package: string;
  /** Why the finding is accepted (not reachable, no fix yet and how it is mitigated, ...). */
  reason: string;
  /** Last day (UTC, YYYY-MM-DD) the acceptance holds; after it the check fails again. */
  expires: string;
}

export interface Advisory {
  /** The GHSA id when the advisory URL carries one, else npm's numeric id. */
  id: string;
  source: number | undefined;
  package: string;
  severity: Severity;
  title: string;
  url: string;
  range: string;
}

export interface Verdict {
  /** High or critical advisories not accepted by a live allowlist entry. */
  blocking: Advisory[];
  /** High or critical advisories accepted by an entry that has not expired. */
  allowed: { advisory: Advisory; entry: AllowEntry }[];
  /** Every problem that fails the check on its own: expired or invalid entries. */
  problems: string[];
  /** Entries that match no advisory of this report (worth removing). */
  unused: AllowEntry[];
  /** Advisories below high, counted by severity (reported, never failing). */
  lower: Partial<Record<Severity, number>>;
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;

/** Validates the allowlist file's content; problems name the entry and what is wrong. */
export function parseAllowlist(
  value: unknown,
  today: string,
): { entries: AllowEntry[]; problems: string[] } {
  const problems: string[] = [];
  const entries: AllowEntry[] = [];
  const list =
    value !== null && typeof value === 'object' && 'advisories' in value
      ? value.advisories
      : undefined;
  if (!Array.isArray(list)) {
    return { entries, problems: ['audit-allowlist.json: expected { "advisories": [ ... ] }'] };
  }
  const latest = addDays(today, MAX_ALLOW_DAYS);
  list.forEach((raw: unknown, index) => {
    const at = `audit-allowlist.json advisories[${String(index)}]`;
    const entry = (raw ?? {}) as Record<string, unknown>;
    const missing = ['id', 'package', 'reason', 'expires'].filter(
      (k) => typeof entry[k] !== 'string' || entry[k].trim() === '',
    );
    if (missing.length > 0) {
      problems.push(`${at}: ${missing.join(', ')} missing or empty`);
      return;
    }
    const e = entry as unknown as AllowEntry;
    if (!DAY.test(e.expires) || Number.isNaN(Date.parse(`${e.expires}T00:00:00Z`))) {
      problems.push(`${at} (${e.id}): expires must be a date YYYY-MM-DD, got ${e.expires}`);
      return;
    }
    if (e.expires < today) {
      problems.push(
        `${at} (${e.id}, ${e.package}): expired on ${e.expires}; review the finding again and remove the entry or renew it with a new reason`,
      );
      return;
    }
    if (e.expires > latest) {
      problems.push(
        `${at} (${e.id}, ${e.package}): expires ${e.expires}, more than ${String(MAX_ALLOW_DAYS)} days away; accept for a year at most`,
      );
      return;
    }
    entries.push({ id: e.id, package: e.package, reason: e.reason, expires: e.expires });
  });
  return { entries, problems };
}

function addDays(day: string, days: number): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);
}

/** Whether the parsed `npm audit --json` output is a report (not an error from the registry). */
export function isReport(report: unknown): report is { vulnerabilities: Record<string, unknown> } {
  return (
    report !== null &&
    typeof report === 'object' &&
    'vulnerabilities' in report &&
    typeof report.vulnerabilities === 'object'
  );
}

/**
 * The advisories of an npm audit report (auditReportVersion 2), one per advisory and package. A
 * vulnerability's `via` lists advisory objects (the package itself is affected) and package names
 * (it is affected through a dependency, whose own entry carries the advisory): only the objects are
 * advisories.
 */
export function advisories(report: { vulnerabilities: Record<string, unknown> }): Advisory[] {
  const found = new Map<string, Advisory>();
  for (const vulnerability of Object.values(report.vulnerabilities)) {
    const via = (vulnerability as { via?: unknown }).via;
    if (!Array.isArray(via)) continue;
    for (const item of via) {
      if (item === null || typeof item !== 'object') continue;
      const v = item as Record<string, unknown>;
      const url = typeof v.url === 'string' ? v.url : '';
      const source = typeof v.source === 'number' ? v.source : undefined;
      const ghsa = /GHSA(-[23456789cfghjmpqrvwx]{4}){3}/.exec(url)?.[0];
      const advisory: Advisory = {
        id: ghsa ?? String(source ?? url),
        source,
        package: typeof v.name === 'string' ? v.name : '',
        severity: (typeof v.severity === 'string' ? v.severity : 'info') as Severity,
        title: typeof v.title === 'string' ? v.title : '',
        url,
        range: typeof v.range === 'string' ? v.range : '',
      };
      found.set(`${advisory.id} ${advisory.package}`, advisory);
    }
  }
  return [...found.values()].sort(
    (a, b) => a.package.localeCompare(b.package) || a.id.localeCompare(b.id),
  );
}

function matches(entry: AllowEntry, advisory: Advisory): boolean {
  const ids = [advisory.id, advisory.source === undefined ? '' : String(advisory.source)];
  return entry.package === advisory.package && ids.includes(entry.id);
}

/** Applies the allowlist (already validated) to a report's advisories. */
export function evaluate(
  found: Advisory[],
  allowlist: AllowEntry[],
  problems: string[] = [],
): Verdict {
  const verdict: Verdict = {
    blocking: [],
    allowed: [],
    problems: [...problems],
    unused: [],
    lower: {},
  };
  const used = new Set<AllowEntry>();
  for (const advisory of found) {
    if (!BLOCKING.has(advisory.severity)) {
      verdict.lower[advisory.severity] = (verdict.lower[advisory.severity] ?? 0) + 1;
      continue;
    }
    const entry = allowlist.find((e) => matches(e, advisory));
    if (entry) {
      used.add(entry);
      verdict.allowed.push({ advisory, entry });
    } else {
      verdict.blocking.push(advisory);
    }
  }
  verdict.unused = allowlist.filter((e) => !used.has(e));
  return verdict;
}

/** The lines printed for a verdict; `ok` is what the exit code says. */
export function describe(verdict: Verdict): { ok: boolean; lines: string[] } {
  const lines: string[] = [];
  for (const a of verdict.blocking) {
    lines.push(`✖ ${a.severity} ${a.package} ${a.range}: ${a.title} (${a.id}) ${a.url}`);
  }
  for (const { advisory: a, entry } of verdict.allowed) {
    lines.push(
      `• accepted until ${entry.expires}: ${a.severity} ${a.package} (${a.id}): ${entry.reason}`,
    );
  }
  for (const p of verdict.problems) lines.push(`✖ ${p}`);
  for (const e of verdict.unused) {
    lines.push(
      `• allowlist entry ${e.id} (${e.package}) matches no finding of this report: remove it?`,
    );
  }
  const lower = Object.entries(verdict.lower).map(([s, n]) => `${String(n)} ${s}`);
  const ok = verdict.blocking.length === 0 && verdict.problems.length === 0;
  lines.push(
    `audit: ${String(verdict.blocking.length)} high/critical not accepted, ${String(verdict.allowed.length)} accepted` +
      (lower.length > 0 ? `, below high: ${lower.join(', ')}` : '') +
      (ok ? ': ok' : ': FAILED'),
  );
  return { ok, lines };
}

function runNpmAudit(): Promise<string> {
  return new Promise((resolve, reject) => {
    // npm audit exits 1 when it finds anything: the JSON on stdout is what counts.
    execFile(
      'npm',
      ['audit', '--json'],
      { maxBuffer: 64 * 1024 * 1024, timeout: 120_000 },
      (error, stdout) => {
        if (stdout.trim() !== '') resolve(stdout);
        else reject(error ?? new Error('npm audit printed nothing'));
      },
    );
  });
}

async function main(): Promise<number> {
  const today = new Date().toISOString().slice(0, 10);
  const { entries, problems } = parseAllowlist(
    JSON.parse(readFileSync('audit-allowlist.json', 'utf8')) as unknown,
    today,
  );
  const reportAt = process.argv.indexOf('--report');
  let text: string | undefined;
  let unavailable = '';
  try {
    text =
      reportAt > 0 ? readFileSync(process.argv[reportAt + 1] ?? '', 'utf8') : await runNpmAudit();
  } catch (error) {
    unavailable = (error as Error).message;
  }
  let report: unknown;
  try {
    report = text === undefined ? undefined : JSON.parse(text);
  } catch {
    unavailable = 'npm audit did not print JSON';
  }
  if (!isReport(report)) {
    const why =
      unavailable ||
      (report as { message?: string } | undefined)?.message ||
      'the registry answered without a report';
    for (const p of problems) console.log(`✖ ${p}`);
    const required = process.env.AUDIT_REQUIRED === '1';
    console.log(
      `audit: NOT RUN (${why})${required ? ': AUDIT_REQUIRED=1, failing' : '; the allowlist was checked'}`,
    );
    return required || problems.length > 0 ? 1 : 0;
  }
  const { ok, lines } = describe(evaluate(advisories(report), entries, problems));
  for (const line of lines) console.log(line);
  return ok ? 0 : 1;
}

if (import.meta.main) process.exitCode = await main();
