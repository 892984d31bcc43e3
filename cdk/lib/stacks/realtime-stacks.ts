import type { StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { EnvConfig } from '../config';
import { EventFabricStack } from '../logical-ids';
import type { RegistryManifest } from '../registry';
import { Realtime } from '../systems/realtime';
import { REALTIME_RULE_TARGETS, RealtimeState, type RealtimeRuleTarget } from '../systems/realtime-state';
import type { IngestStatefulStack } from './ingest-stacks';
import type { StatefulStack } from './stateful-stack';

export interface RealtimeStackProps extends StackProps {
  readonly config: EnvConfig;
  /** The platform (key, alarm topic, app bus). */
  readonly platform: StatefulStack;
}

/** The realtime system's data: app, connections and subscriptions tables, token secret, DLQs, the dashboard's on-failure queue, brand requests queue. */
export class RealtimeStatefulStack extends EventFabricStack {
  readonly state: RealtimeState;

  constructor(scope: Construct, id: string, props: RealtimeStackProps) {
    super(scope, id, props);
    const { config } = props;
    const { platform } = props.platform;
    this.state = new RealtimeState(this, 'RealtimeState', {
      envName: config.name,
      key: platform.key,
      alarmTopic: platform.alarmTopic,
      appBusName: platform.appBus.eventBusName,
      removalPolicy: config.removalPolicy,
      pointInTimeRecovery: config.realtime.pointInTimeRecovery,
      dlqDepthThreshold: config.alarms.dlqDepthThreshold,
      brandRequests: {
        retentionDays: config.queues.retentionDays,
        maxReceiveCount: config.queues.maxReceiveCount,
        maxAgeMinutes: config.alarms.consumerMaxAgeMinutes,
      },
    });
  }
}

export interface RealtimeStatelessStackProps extends RealtimeStackProps {
  readonly registry: RegistryManifest;
  readonly state: RealtimeStatefulStack;
  /** The ingest stream's state: its table's stream feeds the live dashboards. */
  readonly ingest: IngestStatefulStack;
}

/** The realtime system's functions, rules, WebSocket API and alarms. */
export class RealtimeStatelessStack extends EventFabricStack {
  readonly realtime: Realtime;

  constructor(scope: Construct, id: string, props: RealtimeStatelessStackProps) {
    super(scope, id, props);
    const { config, registry } = props;
    const { platform } = props.platform;
    const { state } = props.state;
    const dlqArns = Object.fromEntries(
      REALTIME_RULE_TARGETS.map((t) => [t, state.ruleDeadLetterQueues[t].queue.queueArn]),
    ) as Record<RealtimeRuleTarget, string>;
    this.realtime = new Realtime(this, 'Realtime', {
      envName: config.name,
      registry,
      settings: config.realtime,
      logRetention: config.logRetention,
      removalPolicy: config.removalPolicy,
      delivery: config.ruleTargets,
      key: platform.key,
      alarmTopic: platform.alarmTopic,
      appBus: platform.appBus,
      appTable: state.appTable,
      connectionsTable: state.connectionsTable,
      subscriptionsTable: state.subscriptionsTable,
      dashboardOnFailureQueueArn: state.dashboardOnFailure.queue.queueArn,
      ingestTable: { tableStreamArn: props.ingest.state.table.tableStreamArn as string },
      tokenSecretArn: state.tokenSecret.secretArn,
      ruleDeadLetterQueueArns: dlqArns,
      brandRequests: {
        queueArn: state.brandRequests.queue.queueArn,
        deliveryDeadLetterQueueArn: state.brandRequests.deliveryDeadLetterQueue.queue.queueArn,
      },
    });
  }
}
