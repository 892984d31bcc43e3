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

/**
 * Names that tie a stateful resource to the stateless one that uses it across stacks (the
 * queue's policy names the rule that feeds it, before that rule exists). Both sides take the
 * name from here.
 */
export const NAMES = {
  /** The session bus's consumer: its queue and DLQs (stateful) and the rule feeding them. */
  sessionConsumer: 'session-consumer',
  /** The analytics bus's Parquet archive: bucket, stream, Glue database, and its rule. */
  analyticsArchive: 'analytics-archive',
  /** The session pipeline's trigger rule (session.summary.final → state machine) and its DLQ. */
  sessionPipelineTrigger: 'session-pipeline-trigger',
  /** session.pipeline.failed: its queue and DLQs (stateful) and the rule feeding them. */
  sessionPipelineFailures: 'session-pipeline-failures',
  /** The ingest state table (latest state per entity; its stream feeds the realtime dashboards). */
  ingestState: 'ingest-state',
  /** The ingest Kinesis stream (its alarms and dashboard name it in metric dimensions). */
  ingestStream: 'ingest',
  /** The ingest stream's Parquet archive: bucket, delivery stream and Glue database. */
  ingestArchive: 'ingest-archive',
  /** A realtime processor's rule (`realtime-<role>`) and its target's DLQ (`<rule>-dlq`). */
  realtimeRule: (role: string) => `realtime-${role}`,
  /** Brand Audit Requested and Competitor Refresh Requested: their queue and DLQs, and the rule feeding them. */
  brandRequests: 'brand-requests',
  /** The forwarding kill switch: its rule (forward failure rate alarm → state machine) and that rule's DLQ. */
  forwardKillSwitch: 'forward-kill-switch',
  /** The HTTP tunnel's pending requests table (`pending_requests` in the plan). */
  tunnelPending: 'tunnel-pending',
  /** `HttpResponseReady` for consumers: the rule and its inbox queue. */
  tunnelResponses: 'tunnel-responses',
  sessionBus: 'session',
  analyticsBus: 'analytics',
  /** The application bus (realtime system's domain events). */
  appBus: 'app',
} as const;

/** The CloudWatch namespace of the functions' EMF metrics. */
export const METRICS_NAMESPACE = 'eventfabric';
