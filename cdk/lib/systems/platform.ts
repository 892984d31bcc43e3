import { Duration, type RemovalPolicy } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import type { EnvName } from '../config';
import { keepChildLogicalIds } from '../logical-ids';
import { NAMES, resourceName } from '../naming';
import { AlarmedDeadLetterQueue } from '../constructs/dead-letter-queue';
import { allowEventBridgeDelivery } from '../constructs/policies';

export interface PlatformProps {
  readonly envName: EnvName;
  readonly removalPolicy: RemovalPolicy;
  /** Where alarm notifications are mailed; none means the SNS topic only. */
  readonly alarmEmail?: string;
  /** Passed to every DLQ's depth alarm. */
  readonly dlqDepthThreshold?: number;
  /** The session bus's archive: the detail types (topics) kept, and for how long. */
  readonly sessionArchive?: { readonly source: string; readonly detailTypes: string[]; readonly retentionDays: number };
}

/**
 * What every system shares: the platform KMS key, the alarm topic every alarm notifies, and
 * the event buses (encrypted with the key, each with an alarmed DLQ for events it cannot
 * encrypt or decrypt). Systems receive these as props; none of them creates its own key or
 * topic.
 *
 * Its resources predate it (the stateful stack built them directly), so it keeps their
 * logical ids ({@link keepChildLogicalIds}).
 */
export class Platform extends Construct {
  readonly key: kms.Key;
  readonly alarmTopic: sns.Topic;
  readonly sessionBus: events.EventBus;
  readonly analyticsBus: events.EventBus;
  /** Events of the registry's `archive` topics, replayable; absent when no topic is flagged. */
  readonly sessionArchive?: events.Archive;

  constructor(scope: Construct, id: string, props: PlatformProps) {
    super(scope, id);
    keepChildLogicalIds(this);
    const name = (...parts: string[]) => resourceName(props.envName, ...parts);

    this.key = new kms.Key(this, 'PlatformKey', {
      alias: `alias/${name('platform')}`,
      description: `eventfabric ${props.envName}: encryption at rest for buses, queues, topics, the archive and state`,
      enableKeyRotation: true,
      removalPolicy: props.removalPolicy,
    });
    // EventBridge (delivering to encrypted queues), CloudWatch (alarming to the encrypted
    // topic) and AWS Budgets (budget alerts to that topic) encrypt with this key on our
    // behalf, from this account only.
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowPlatformServicesToEncrypt',
        principals: [
          new iam.ServicePrincipal('events.amazonaws.com'),
          new iam.ServicePrincipal('cloudwatch.amazonaws.com'),
          new iam.ServicePrincipal('budgets.amazonaws.com'),
        ],
        actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
        resources: ['*'], // in a key policy, '*' means this key
        conditions: { StringEquals: { 'aws:SourceAccount': this.key.stack.account } },
      }),
    );

    this.alarmTopic = new sns.Topic(this, 'AlarmTopic', {
      topicName: name('alarms'),
      displayName: `eventfabric ${props.envName} alarms`,
      masterKey: this.key,
      enforceSSL: true,
    });
    // Budget alerts (the ingest system's monthly budget) arrive on the same topic.
    this.alarmTopic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowBudgetAlerts',
        principals: [new iam.ServicePrincipal('budgets.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.alarmTopic.topicArn],
        conditions: { StringEquals: { 'aws:SourceAccount': this.key.stack.account } },
      }),
    );
    if (props.alarmEmail) {
      this.alarmTopic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
    }

    this.sessionBus = this.encryptedBus('SessionBus', NAMES.sessionBus, 'Interface events forwarded from browser sessions', props);
    this.analyticsBus = this.encryptedBus(
      'AnalyticsBus',
      NAMES.analyticsBus,
      'Interface events bound for the analytics archive',
      props,
    );

    const archive = props.sessionArchive;
    if (archive && archive.detailTypes.length > 0) {
      this.sessionArchive = new events.Archive(this, 'SessionArchive', {
        archiveName: name('session-archive'),
        description: `Regulated interface topics, kept ${archive.retentionDays} days for audit and replay`,
        // The bus by name, not by reference: the archive's key policy statement names its bus,
        // and a reference would make the key depend on the bus, which depends on the key.
        sourceEventBus: events.EventBus.fromEventBusName(this, 'SessionBusByName', name(NAMES.sessionBus)),
        eventPattern: { source: [archive.source], detailType: [...archive.detailTypes].sort() },
        retention: Duration.days(archive.retentionDays),
        kmsKey: this.key,
      });
      this.sessionArchive.node.addDependency(this.sessionBus);
    }
  }

  /**
   * A bus that encrypts events, rule patterns and targets with the platform key (EventBridge
   * adds its own key policy statement, bound to the bus by source ARN and encryption context).
   * Events EventBridge cannot encrypt or decrypt (say, the key was disabled) go to the bus's
   * DLQ instead of being dropped, and that DLQ alarms like every other. The next bus of the
   * platform is one more call.
   */
  private encryptedBus(id: string, bus: string, description: string, props: PlatformProps): events.EventBus {
    const busName = resourceName(props.envName, bus);
    const dlq = new AlarmedDeadLetterQueue(this, `${id}Dlq`, {
      key: this.key,
      alarmTopic: this.alarmTopic,
      depthThreshold: props.dlqDepthThreshold,
      removalPolicy: props.removalPolicy,
      queueName: resourceName(props.envName, bus, 'bus-dlq'),
      holds: `events the ${busName} bus could not encrypt or decrypt with the platform key (is the key disabled or its policy changed?)`,
    });
    const stack = this.key.stack;
    allowEventBridgeDelivery(
      dlq.queue,
      'AllowDeliveryFromItsBus',
      stack.formatArn({ service: 'events', resource: 'event-bus', resourceName: busName }),
    );
    const eventBus = new events.EventBus(this, id, {
      eventBusName: busName,
      description,
      kmsKey: this.key,
      deadLetterQueue: dlq.queue,
    });
    eventBus.applyRemovalPolicy(props.removalPolicy);
    return eventBus;
  }
}
