import { Duration, Stack, type StackProps } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type { Construct } from 'constructs';
import type { EnvConfig } from '../config';
import { ConsumerInbox } from '../constructs/consumer-inbox';
import { resourceName } from '../naming';
import { archivedTopics, type RegistryManifest } from '../registry';

export interface StatefulStackProps extends StackProps {
  readonly config: EnvConfig;
  readonly registry: RegistryManifest;
}

/** Names of the consumers fed from the session bus, shared with the stateless stack. */
export const SESSION_CONSUMER = 'session-consumer';

/**
 * What holds data: the platform KMS key, the event buses, consumer queues and their DLQs, and
 * the alarm topic. Logical ids here are never renamed (a rename replaces the resource).
 */
export class StatefulStack extends Stack {
  readonly key: kms.Key;
  readonly alarmTopic: sns.Topic;
  readonly sessionBus: events.EventBus;
  readonly analyticsBus: events.EventBus;
  readonly sessionConsumer: ConsumerInbox;
  /** Events of the registry's `archive` topics, replayable; absent when no topic is flagged. */
  readonly sessionArchive?: events.Archive;

  constructor(scope: Construct, id: string, props: StatefulStackProps) {
    super(scope, id, props);
    const { config, registry } = props;
    const name = (...parts: string[]) => resourceName(config.name, ...parts);

    this.key = new kms.Key(this, 'PlatformKey', {
      alias: `alias/${name('platform')}`,
      description: `eventfabric ${config.name}: encryption at rest for queues and topics`,
      enableKeyRotation: true,
      removalPolicy: config.removalPolicy,
    });
    // EventBridge (delivering to encrypted queues) and CloudWatch (alarming to the encrypted
    // topic) encrypt with this key on our behalf, from this account only.
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowPlatformServicesToEncrypt',
        principals: [
          new iam.ServicePrincipal('events.amazonaws.com'),
          new iam.ServicePrincipal('cloudwatch.amazonaws.com'),
        ],
        actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
        resources: ['*'], // in a key policy, '*' means this key
        conditions: { StringEquals: { 'aws:SourceAccount': this.account } },
      }),
    );

    this.alarmTopic = new sns.Topic(this, 'AlarmTopic', {
      topicName: name('alarms'),
      displayName: `eventfabric ${config.name} alarms`,
      masterKey: this.key,
      enforceSSL: true,
    });
    if (config.alarms.email) {
      this.alarmTopic.addSubscription(new subscriptions.EmailSubscription(config.alarms.email));
    }

    this.sessionBus = new events.EventBus(this, 'SessionBus', {
      eventBusName: name('session'),
      description: 'Interface events forwarded from browser sessions',
    });
    this.analyticsBus = new events.EventBus(this, 'AnalyticsBus', {
      eventBusName: name('analytics'),
      description: 'Interface events bound for the analytics archive',
    });
    for (const bus of [this.sessionBus, this.analyticsBus]) {
      bus.applyRemovalPolicy(config.removalPolicy);
    }

    const archived = archivedTopics(registry, 'session');
    if (archived.length > 0) {
      this.sessionArchive = new events.Archive(this, 'SessionArchive', {
        archiveName: name('session-archive'),
        description: `Regulated interface topics, kept ${config.archiveRetentionDays} days for audit and replay`,
        sourceEventBus: this.sessionBus,
        eventPattern: { source: [registry.source], detailType: [...archived].sort() },
        retention: Duration.days(config.archiveRetentionDays),
        kmsKey: this.key,
      });
    }

    this.sessionConsumer = new ConsumerInbox(this, 'SessionConsumer', {
      key: this.key,
      config,
      alarmTopic: this.alarmTopic,
      queueName: name(SESSION_CONSUMER),
      busName: this.sessionBus.eventBusName,
      ruleName: name(SESSION_CONSUMER),
    });
  }
}
