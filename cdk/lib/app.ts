import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import { envConfig } from './config';
import { loadRegistry } from './registry';
import { EventFabricStage } from './stage';

/**
 * Builds the app for one environment (`-c env=dev|staging|prod`, default dev) with the
 * cdk-nag AwsSolutions and Serverless packs wired into synthesis: an unacknowledged finding
 * fails the synth.
 */
export function buildApp(app: App = new App()): { app: App; stage: EventFabricStage } {
  const envName = String(app.node.tryGetContext('env') ?? 'dev');
  const config = envConfig(envName);
  const stageId = config.name.charAt(0).toUpperCase() + config.name.slice(1);
  const stage = new EventFabricStage(app, stageId, { config, registry: loadRegistry() });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new ServerlessChecks(app));
  return { app, stage };
}
