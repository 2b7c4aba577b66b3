// Headings, anchors and links of a Markdown file, for the documentation tests (links that resolve,
// a runbook section per alert). Hand-written: GitHub's anchor rule (github-slugger) is a dozen lines
// and no Markdown parser is installed; code blocks and inline code are skipped, which is all the
// structure these checks need.

/** The text outside fenced code blocks, fenced lines blanked (so line numbers stay right). */
export function withoutCodeBlocks(markdown: string): string[] {
  let fence: string | undefined;
  return markdown.split('\n').map((line) => {
    const marker = /^\s{0,3}(`{3,}|~{3,})/.exec(line)?.[1];
    if (fence === undefined && marker) {
      fence = marker[0]?.repeat(marker.length);
      return '';
    }
    if (fence !== undefined) {
      if (marker && marker.startsWith(fence)) fence = undefined;
      return '';
    }
    return line;
  });
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
export function slug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // a link's text
    .replace(/`([^`]*)`/g, '$1')
    .replace(/<[^>]+>/g, '')
    .trim()
    .toLowerCase();
  return text.replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '').replace(/ /g, '-');
}

/** The anchors a file offers: its headings' slugs (repeats get -1, -2, ...) and explicit ids. */
export function anchors(markdown: string): Set<string> {
  const found = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of withoutCodeBlocks(markdown)) {
    const heading = /^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)?.[1];
    if (heading !== undefined) {
      const base = slug(heading);
      const count = seen.get(base) ?? 0;
      seen.set(base, count + 1);
      found.add(count === 0 ? base : `${base}-${String(count)}`);
    }
    for (const m of line.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) if (m[1]) found.add(m[1]);
  }
  return found;
}

/** The headings of a file (level and text), outside code blocks. */
export function headings(markdown: string): { level: number; text: string }[] {
  const list: { level: number; text: string }[] = [];
  for (const line of withoutCodeBlocks(markdown)) {
    const m = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
    if (m?.[1] && m[2] !== undefined) list.push({ level: m[1].length, text: m[2] });
  }
  return list;
}

/** Inline link and image targets `[text](target)` with their line numbers, outside code. */
export function links(markdown: string): { target: string; line: number }[] {
  const list: { target: string; line: number }[] = [];
  withoutCodeBlocks(markdown).forEach((raw, index) => {
    const line = raw.replace(/`[^`]*`/g, '');
    for (const m of line.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
      if (m[1]) list.push({ target: m[1], line: index + 1 });
    }
  });
  return list;
}
