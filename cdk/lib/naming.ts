import type { EnvName } from './config';

/** Physical names: `eventfabric-<env>-<parts>`. Stable, so stacks can refer to each other's
 * resources by name without cross-stack cycles. */
export function resourceName(env: EnvName, ...parts: string[]): string {
  return ['eventfabric', env, ...parts].join('-');
}

/** ARN of a rule on a custom event bus, known before the rule exists. */
export function ruleArn(partition: string, region: string, account: string, busName: string, ruleName: string): string {
  return `arn:${partition}:events:${region}:${account}:rule/${busName}/${ruleName}`;
}
