import { appendFile, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint, parseCheckpoint, scanSoFar } from '../../cli/duplicates-checkpoint.js';
import { UsageError } from '../../cli/io.js';
import type { ScannedProfile } from '../../lib/duplicates/match.js';
import { useTempDir } from '../support/temp-dir.js';

/** Removed after this file's tests, with every folder made in it. */
const tempDir = useTempDir('duplicates-checkpoint');

const profile = (id: string, email = `${id}@example.com`): ScannedProfile => ({
  id,
  email,
  phone_number: null,
  external_id: null,
  first_name: null,
  last_name: null,
});
const header = { checkpoint: 'identity-sync duplicates', tenant: 'acme', reads: 'account' };
const line = (value: unknown) => `${JSON.stringify(value)}\n`;

let dir: string;
let serial = 0;
beforeAll(async () => {
  dir = await mkdtemp(join(tempDir(), 'duplicates-checkpoint-'));
});
const pathOf = () => join(dir, `${++serial}.checkpoint.ndjson`);

describe('parseCheckpoint and scanSoFar', () => {
  it('goes on from the last whole page, and drops a torn last line', () => {
    const text =
      line(header) +
      line({ page: 1, profiles: [profile('a')], next: 'c2' }) +
      line({ page: 2, profiles: [profile('b')], next: 'c3' }) +
      '{"page":3,"profiles":[{"id":"c"';
    const { pages } = parseCheckpoint(text);
    expect(scanSoFar(pages)).toMatchObject({ pages: 2, next: 'c3', done: false });
    expect([...scanSoFar(pages).profiles.keys()]).toEqual(['a', 'b']);
  });

  it('is done after a page with no next, and keeps each profile once, as last read', () => {
    const { pages } = parseCheckpoint(
      line(header) +
        line({ page: 1, profiles: [profile('a', 'old@example.com')], next: 'c2' }) +
        line({ page: 2, profiles: [profile('a', 'new@example.com')], next: null }),
    );
    const scan = scanSoFar(pages);
    expect(scan).toMatchObject({ pages: 2, done: true });
    expect(scan.next).toBeUndefined();
    expect([...scan.profiles.values()].map((kept) => kept.email)).toEqual(['new@example.com']);
  });

  it('reads nothing before the first page, and nothing from a file that is no checkpoint', () => {
    expect(scanSoFar(parseCheckpoint(line(header)).pages)).toMatchObject({ pages: 0, done: false });
    expect(parseCheckpoint('email,externalId\n')).toEqual({ pages: [] });
  });

  it('stops at a page out of sequence rather than guess', () => {
    const { pages } = parseCheckpoint(
      line(header) +
        line({ page: 1, profiles: [], next: 'c2' }) +
        line({ page: 3, profiles: [], next: null }),
    );
    expect(pages).toHaveLength(1);
  });
});

describe('openCheckpoint', () => {
  it('starts a file with its header, appends pages, and a reopening goes on from them', async () => {
    const path = pathOf();
    const first = await openCheckpoint(path, { tenant: 'acme', reads: 'account' });
    expect(first).toMatchObject({ pages: 0, done: false });
    await first.append({ profiles: [profile('a')], next: 'c2' });
    expect(first).toMatchObject({ pages: 1, next: 'c2' });

    const again = await openCheckpoint(path, { tenant: 'acme', reads: 'account' });
    expect(again).toMatchObject({ pages: 1, next: 'c2', done: false });
    await again.append({ profiles: [profile('b')], next: null });
    expect(again.done).toBe(true);
    expect((await readFile(path, 'utf8')).trim().split('\n')).toHaveLength(3);
  });

  it('keeps what the rules pair on, and leaves the phone out', async () => {
    const path = pathOf();
    const checkpoint = await openCheckpoint(path, { tenant: 'acme', reads: 'account' });
    await checkpoint.append({ profiles: [{ ...profile('a'), phone_number: '+14155550123' }], next: null });
    const text = await readFile(path, 'utf8');
    expect(text).not.toContain('4155550123');
    expect(text).toContain('a@example.com');
  });

  it('cuts a torn last line off before appending, so the file stays whole lines', async () => {
    const path = pathOf();
    await writeFile(path, line(header) + line({ page: 1, profiles: [profile('a')], next: 'c2' }));
    await appendFile(path, '{"page":2,"prof');
    const checkpoint = await openCheckpoint(path, { tenant: 'acme', reads: 'account' });
    await checkpoint.append({ profiles: [profile('b')], next: null });
    const reread = scanSoFar(parseCheckpoint(await readFile(path, 'utf8')).pages);
    expect(reread).toMatchObject({ pages: 2, done: true });
    expect(reread.profiles.size).toBe(2);
  });

  it("refuses another tenant's or another read's checkpoint, and a file that is none, unless restarting", async () => {
    const path = pathOf();
    await writeFile(path, line(header) + line({ page: 1, profiles: [profile('a')], next: null }));
    await expect(openCheckpoint(path, { tenant: 'other', reads: 'account' })).rejects.toThrow(UsageError);
    await expect(openCheckpoint(path, { tenant: 'acme', reads: 'customers:1234' })).rejects.toThrow(
      /--restart/,
    );
    const restarted = await openCheckpoint(path, { tenant: 'other', reads: 'account' }, { restart: true });
    expect(restarted).toMatchObject({ pages: 0, done: false });

    const notOne = pathOf();
    await writeFile(notOne, 'email,externalId\n');
    await expect(openCheckpoint(notOne, { tenant: 'acme', reads: 'account' })).rejects.toThrow(
      /not a duplicates checkpoint/,
    );
  });

  it('refuses a checkpoint read from another Klaviyo account or base URL, or one that does not say which', async () => {
    const path = pathOf();
    const ours = { tenant: 'acme', reads: 'account', target: 'a1b2c3d4e5f60718' };
    const first = await openCheckpoint(path, ours);
    await first.append({ profiles: [profile('a')], next: 'c2' });
    expect(await openCheckpoint(path, ours)).toMatchObject({ pages: 1 });
    await expect(openCheckpoint(path, { ...ours, target: 'ffffffffffffffff' })).rejects.toThrow(
      `the checkpoint ${path} was read from another Klaviyo account or base URL (or by a version that did not record which): pass --restart to read afresh, or another --checkpoint`,
    );

    // As an earlier version wrote it: a header without a target.
    const older = pathOf();
    await writeFile(older, line(header) + line({ page: 1, profiles: [profile('a')], next: null }));
    await expect(openCheckpoint(older, ours)).rejects.toThrow(/another Klaviyo account/);
    expect(await openCheckpoint(older, ours, { restart: true })).toMatchObject({ pages: 0 });
  });
});
