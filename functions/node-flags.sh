#!/bin/bash
# Lambda's exec wrapper (AWS_LAMBDA_EXEC_WRAPPER) for a Node.js function. Lambda runs it with the
# runtime's command line as its arguments (node, the runtime's flags, its entry script last); it
# starts that command with LAMBDA_NODE_FLAGS placed just before the entry script, after the
# runtime's own flags. NODE_OPTIONS cannot carry them: it refuses most of V8's options, and is
# read before the command line, whose flags (the heap limits the runtime derives from the memory
# size, which the worker's --max-semi-space-size=1 must override) would win over it.
set -euo pipefail
if [ "$#" -lt 2 ]; then exec "$@"; fi
args=("$@")
last=$((${#args[@]} - 1))
# Split on spaces, as NODE_OPTIONS is.
read -r -a extra <<<"${LAMBDA_NODE_FLAGS:-}"
exec "${args[@]:0:last}" ${extra[@]+"${extra[@]}"} "${args[last]}"
