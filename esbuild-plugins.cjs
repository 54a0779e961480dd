// esbuild plugins of the functions' bundles: serverless.yml's custom.esbuild.plugins (serverless-esbuild
// require()s this file) and the benchmarks' builds (bench/bundle.ts).
const { isBuiltin } = require('node:module');

/**
 * Node built-ins are required where a module first runs, not imported at the top of the bundle.
 * esbuild hoists every `import … from 'node:…'` of the bundled ES modules to the top, so each
 * built-in any module names (used or not: the credential providers Lambda never runs) loads at
 * every cold start; and Node's ES module face of node:http reads all its exports, which loads
 * Node's own copy of undici: about 20 ms and 13 MiB (bench/RESULTS.md). require() loads a
 * built-in as CommonJS, when the module that needs it is first evaluated.
 */
const requireBuiltins = {
  name: 'require-builtins',
  setup(build) {
    build.onResolve({ filter: /^(node:)?[a-z0-9_/]+$/ }, (args) =>
      args.kind !== 'require-call' && isBuiltin(args.path)
        ? { path: args.path, namespace: 'builtin' }
        : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: 'builtin' }, (args) => ({
      contents: `module.exports = require(${JSON.stringify(args.path)});`,
      loader: 'js',
    }));
  },
};

module.exports = [requireBuiltins];
