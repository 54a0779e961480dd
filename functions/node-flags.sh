#!/bin/bash
# Lambda's exec wrapper (AWS_LAMBDA_EXEC_WRAPPER) for a Node.js function. Lambda runs it with the
# runtime's command line as its arguments (node, the runtime's flags, its entry script last); it
# starts that command with LAMBDA_NODE_FLAGS placed just before the entry script, after the
# runtime's own flags, so a V8 option set by both (the heap limits the runtime derives from the
# memory size) takes ours. NODE_OPTIONS cannot: it is read before the command line, which wins.
set -euo pipefail
if [ "$#" -lt 2 ]; then exec "$@"; fi
args=("$@")
last=$((${#args[@]} - 1))
# Split on spaces, as NODE_OPTIONS is.
read -r -a extra <<<"${LAMBDA_NODE_FLAGS:-}"
exec "${args[@]:0:last}" ${extra[@]+"${extra[@]}"} "${args[last]}"
