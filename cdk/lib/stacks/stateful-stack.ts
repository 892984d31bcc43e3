import type { StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { EnvConfig } from '../config';
import { ForwardingState } from '../systems/forwarding-state';
import { Platform } from '../systems/platform';
import { EventFabricStack } from '../logical-ids';
import { archivedKinds, forwardedTopics, type RegistryManifest } from '../registry';

export interface StatefulStackProps extends StackProps {
  readonly config: EnvConfig;
  readonly registry: RegistryManifest;
}

/**
 * What holds data: the platform (key, alarm topic, buses) and forwarding's state. Logical ids
 * here are never renamed (a rename replaces the resource); see README "Layout".
 */
export class StatefulStack extends EventFabricStack {
  readonly platform: Platform;
  readonly forwarding: ForwardingState;

  constructor(scope: Construct, id: string, props: StatefulStackProps) {
    super(scope, id, props);
    const { config, registry } = props;
    this.platform = new Platform(this, 'Platform', {
      envName: config.name,
      removalPolicy: config.removalPolicy,
      alarmEmail: config.alarms.email,
      dlqDepthThreshold: config.alarms.dlqDepthThreshold,
      sessionArchive: { kinds: archivedKinds(registry, 'session'), retentionDays: config.archiveRetentionDays },
      appArchive: { kinds: archivedKinds(registry, 'app'), retentionDays: config.archiveRetentionDays },
    });
    this.forwarding = new ForwardingState(this, 'Forwarding', {
      envName: config.name,
      key: this.platform.key,
      alarmTopic: this.platform.alarmTopic,
      sessionBusName: this.platform.sessionBus.eventBusName,
      removalPolicy: config.removalPolicy,
      logRetention: config.logRetention,
      consumer: {
        retentionDays: config.queues.retentionDays,
        maxReceiveCount: config.queues.maxReceiveCount,
        maxAgeMinutes: config.alarms.consumerMaxAgeMinutes,
      },
      dlqDepthThreshold: config.alarms.dlqDepthThreshold,
      analyticsArchive: {
        topics: forwardedTopics(registry, 'analytics'),
        columns: registry.analyticsArchiveColumns,
        settings: config.analyticsArchive,
      },
    });
  }
}
