import type { StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { EnvConfig } from '../config';
import { EventFabricStack } from '../logical-ids';
import type { RegistryManifest } from '../registry';
import { SessionPipeline } from '../systems/session-pipeline';
import { SessionPipelineState } from '../systems/session-pipeline-state';
import type { StatefulStack } from './stateful-stack';

export interface SessionPipelineStackProps extends StackProps {
  readonly config: EnvConfig;
  /** The platform (key, alarm topic, session bus). */
  readonly platform: StatefulStack;
}

/** The session pipeline's data: summaries table, trigger DLQ, failures queue. */
export class SessionPipelineStatefulStack extends EventFabricStack {
  readonly state: SessionPipelineState;

  constructor(scope: Construct, id: string, props: SessionPipelineStackProps) {
    super(scope, id, props);
    const { config } = props;
    const { platform } = props.platform;
    this.state = new SessionPipelineState(this, 'SessionPipelineState', {
      envName: config.name,
      key: platform.key,
      alarmTopic: platform.alarmTopic,
      sessionBusName: platform.sessionBus.eventBusName,
      removalPolicy: config.removalPolicy,
      pointInTimeRecovery: config.sessionPipeline.pointInTimeRecovery,
      dlqDepthThreshold: config.alarms.dlqDepthThreshold,
      failures: {
        retentionDays: config.queues.retentionDays,
        maxReceiveCount: config.queues.maxReceiveCount,
        maxAgeMinutes: config.alarms.consumerMaxAgeMinutes,
      },
    });
  }
}

export interface SessionPipelineStatelessStackProps extends SessionPipelineStackProps {
  readonly registry: RegistryManifest;
  readonly state: SessionPipelineStatefulStack;
}

/** The session pipeline's functions, state machine, rules and alarms. */
export class SessionPipelineStatelessStack extends EventFabricStack {
  readonly pipeline: SessionPipeline;

  constructor(scope: Construct, id: string, props: SessionPipelineStatelessStackProps) {
    super(scope, id, props);
    const { config, registry } = props;
    const { platform } = props.platform;
    const { state } = props.state;
    this.pipeline = new SessionPipeline(this, 'SessionPipeline', {
      envName: config.name,
      registry,
      settings: config.sessionPipeline,
      logRetention: config.logRetention,
      removalPolicy: config.removalPolicy,
      delivery: config.ruleTargets,
      key: platform.key,
      alarmTopic: platform.alarmTopic,
      sessionBus: platform.sessionBus,
      table: state.table,
      triggerDeadLetterQueueArn: state.triggerDeadLetterQueue.queue.queueArn,
      failures: {
        queueArn: state.failures.queue.queueArn,
        deliveryDeadLetterQueueArn: state.failures.deliveryDeadLetterQueue.queue.queueArn,
      },
    });
  }
}
