import { expect, it } from 'vitest';
import { LOCAL_STAGE } from '../../scripts/local-stack/offline.js';
import { type Json, serviceConfig } from '../support/osls.js';

/**
 * `npm start` (serverless-offline, stage local) and `osls package`/`deploy` (any other stage) let
 * serverless-esbuild build in different work folders: packaging while the local stack runs must
 * not delete the bundles it serves (which failed with "Cannot find module").
 */
it('builds the local stack and packages in different folders', async () => {
  // Stage local reads the resources' settings from the environment (infra/resource-env.local.yml).
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    IDENTITY_CHANGES_QUEUE_URL: 'http://127.0.0.1:9/changes.fifo',
    DEAD_LETTER_QUEUE_URL: 'http://127.0.0.1:9/dlq.fifo',
    SYNC_STATE_TABLE: 'state',
    EXPORTS_BUCKET: 'exports',
  };
  delete env.SLS_ESBUILD_WORK_FOLDER;
  const workFolder = async (stage: string) =>
    ((await serviceConfig(stage, env)).custom as { esbuild: Json }).esbuild.outputWorkFolder;
  const [local, deployed] = await Promise.all([workFolder(LOCAL_STAGE), workFolder('prod')]);
  expect(local).toBe('.esbuild-offline');
  expect(deployed).toBe('.esbuild');
}, 60_000);
