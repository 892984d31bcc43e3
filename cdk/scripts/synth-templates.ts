/**
 * Synthesizes environments without building Rust (asset bundling skipped), for template tests:
 *   node --import tsx scripts/synth-templates.ts <outdir> [env ...]
 * Each env goes to <outdir>/<env>. Exits non-zero if any validation (cdk-nag) fails.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import { buildApp } from '../lib/app';
import { ENV_NAMES } from '../lib/config';

const [outRoot, ...requested] = process.argv.slice(2);
if (!outRoot) {
  console.error('usage: synth-templates.ts <outdir> [env ...]');
  process.exit(2);
}
// The same context the CLI would pass from cdk.json.
const cdkJson = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'cdk.json'), 'utf8'));
const envs = requested.length > 0 ? requested : [...ENV_NAMES];
for (const env of envs) {
  const app = new App({
    outdir: path.resolve(outRoot, env),
    context: { ...cdkJson.context, env, 'aws:cdk:bundling-stacks': [] },
  });
  buildApp(app);
  app.synth();
  console.error(`synthesized ${env} (bundling skipped) -> ${path.join(outRoot, env)}`);
}
