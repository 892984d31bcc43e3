import { dev } from './dev';
import { prod } from './prod';
import { staging } from './staging';
import { ENV_NAMES, type EnvConfig, type EnvName } from './types';

export * from './types';

const CONFIGS: Record<EnvName, EnvConfig> = { dev, staging, prod };

/** The config of `name`, or an error listing the valid names. */
export function envConfig(name: string): EnvConfig {
  if (!(ENV_NAMES as readonly string[]).includes(name)) {
    throw new Error(`unknown environment '${name}': use -c env=<${ENV_NAMES.join('|')}>`);
  }
  return CONFIGS[name as EnvName];
}
