import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * README.md is the front door and stays short; the deep material lives in docs/. Every relative
 * link of README.md and docs/*.md, and every anchor it names, must lead somewhere: moving a
 * section without fixing what points at it fails here.
 */
const ROOT = join(import.meta.dirname, '..', '..');
const README_MAX_LINES = 300;
const PAGES = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => `docs/${name}`),
];

/** A page's lines outside fenced code blocks, with inline code emptied: where links are links. */
function proseLines(markdown: string): string[] {
  const prose: string[] = [];
  let fence: string | undefined;
  for (const line of markdown.split('\n')) {
    const marker = /^\s*(`{3,}|~{3,})/.exec(line)?.[1];
    if (fence === undefined && marker !== undefined) fence = marker;
    else if (fence !== undefined && marker?.startsWith(fence)) fence = undefined;
    else if (fence === undefined)
      prose.push(line.replace(/`[^`]*`/g, (code) => code.replace(/[[\]()]/g, '')));
  }
  return prose;
}

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens. */
function anchorOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\p{M} _-]/gu, '')
    .replace(/ /g, '-');
}

/** The anchors of a page's headings, numbered as GitHub numbers repeated ones (`-1`, `-2`). */
function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of proseLines(markdown)) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)?.[1];
    if (heading === undefined) continue;
    const base = anchorOf(heading.replace(/\[([^\]]*)\]\([^)]*\)/g, '$1'));
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count === 0 ? base : `${base}-${count}`);
  }
  return anchors;
}

/** The targets of a page's inline links and images (`[text](target)`), code left out. */
function linkTargets(markdown: string): string[] {
  const prose = proseLines(markdown).join('\n');
  return [...prose.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map(
    ([, target]) => target as string,
  );
}

/** What is wrong with one link of `page`, or undefined when it leads somewhere. */
function brokenLink(page: string, target: string): string | undefined {
  if (/^[a-z][a-z+.-]*:/i.test(target)) return undefined; // https:, mailto:: not ours to check
  const [path = '', anchor] = target.split('#');
  const file = path === '' ? join(ROOT, page) : join(ROOT, dirname(page), decodeURI(path));
  if (relative(ROOT, file).startsWith('..')) return `${page}: ${target} leaves the repository`;
  if (!existsSync(file)) return `${page}: ${target}: no such file`;
  if (anchor === undefined || anchor === '' || !file.endsWith('.md')) return undefined;
  if (anchorsOf(readFileSync(file, 'utf8')).has(decodeURIComponent(anchor))) return undefined;
  return `${page}: ${target}: no heading #${anchor} in ${relative(ROOT, file)}`;
}

describe('the README and docs/', () => {
  it(`keep README.md to at most ${README_MAX_LINES} lines`, () => {
    const lines = readFileSync(join(ROOT, 'README.md'), 'utf8').trimEnd().split('\n');
    expect(lines.length).toBeLessThanOrEqual(README_MAX_LINES);
  });

  it('show the two commands for a fresh machine in the README', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    expect(readme).toContain('npm install && npm start');
    expect(readme).toContain('npm install && npm test');
  });

  it('link only to files and headings that exist', () => {
    const broken = PAGES.flatMap((page) =>
      linkTargets(readFileSync(join(ROOT, page), 'utf8')).map((target) => brokenLink(page, target)),
    ).filter((problem) => problem !== undefined);
    expect(broken).toEqual([]);
  });

  it('check links: the pages hold links to check, and a wrong one is found', () => {
    const targets = PAGES.flatMap((page) => linkTargets(readFileSync(join(ROOT, page), 'utf8')));
    expect(targets.length).toBeGreaterThan(40);
    expect(targets.filter((target) => target.includes('#')).length).toBeGreaterThan(10);
    expect(brokenLink('README.md', 'docs/deploying.md#no-such-heading')).toMatch(/no heading/);
    expect(brokenLink('README.md', 'docs/no-such-page.md')).toMatch(/no such file/);
    expect(brokenLink('docs/cli.md', '#finding-duplicates')).toBeUndefined();
    expect(brokenLink('docs/cli.md', '../README.md#architecture')).toBeUndefined();
  });

  it("names headings' anchors as GitHub does", () => {
    expect(anchorOf('The `identity-sync` CLI')).toBe('the-identity-sync-cli');
    expect(anchorOf("Pacing Klaviyo's quota")).toBe('pacing-klaviyos-quota');
    expect(anchorOf('Operating it: logs, metrics, dead letters')).toBe(
      'operating-it-logs-metrics-dead-letters',
    );
    expect(anchorOf('`POST /webhooks/shopify`')).toBe('post-webhooksshopify');
    expect([...anchorsOf('# A\n\n```sh\n# not a heading\n```\n\n## A\n')]).toEqual(['a', 'a-1']);
  });
});
