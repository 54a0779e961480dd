// Plain JavaScript, no import of the project: it must run on any Node to say which Node is needed.

/** The oldest Node the CLI runs on (package.json engines). */
export const MINIMUM_NODE_MAJOR = 22;

/** One line saying what to install, or undefined when `version` (e.g. `20.11.1`) will do. */
export function nodeVersionProblem(version) {
  const major = Number.parseInt(String(version), 10);
  if (major >= MINIMUM_NODE_MAJOR) return undefined;
  return (
    `identity-sync needs Node.js ${MINIMUM_NODE_MAJOR} or later (24 recommended), this is ${version}:` +
    ' install it (https://nodejs.org, or `nvm install 24`), or in the clone run `npm run identity-sync -- <command>`, which brings its own'
  );
}
