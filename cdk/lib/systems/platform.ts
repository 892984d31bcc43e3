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

/** Which events of a bus an EventBridge Archive keeps, and how long. */
export interface ArchiveSelection {
  /** One source per archived topic, with its detail type (the registry's kinds). */
  readonly kinds: { readonly source: string; readonly detailType: string }[];
  readonly retentionDays: number;
}

export interface PlatformProps {
  readonly envName: EnvName;
  readonly removalPolicy: RemovalPolicy;
  /** Where alarm notifications are mailed; none means the SNS topic only. */
  readonly alarmEmail?: string;
  /** Passed to every DLQ's depth alarm. */
  readonly dlqDepthThreshold?: number;
  /** The session bus's archive: the detail types (topics) kept, and for how long. */
  readonly sessionArchive?: ArchiveSelection;
  /** The application bus's EventBridge Archive (its topics flagged `archive`). */
  readonly appArchive?: ArchiveSelection;
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
  /** The application bus: the content platform's domain events (realtime system). */
  readonly appBus: events.EventBus;
  readonly appArchive?: events.Archive;
  private readonly envName: EnvName;

  constructor(scope: Construct, id: string, props: PlatformProps) {
    super(scope, id);
    keepChildLogicalIds(this);
    this.envName = props.envName;
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

    this.sessionArchive = this.archive('SessionArchive', 'SessionBusByName', NAMES.sessionBus, this.sessionBus, props.sessionArchive, {
      name: name('session-archive'),
      // CDK's own statement id (the session archive predates this method: its key policy is unchanged).
      keyStatementSid: 'Allow EventBridge to use kms operations',
      description: (days) => `Regulated interface topics, kept ${days} days for audit and replay`,
    });
    this.appBus = this.encryptedBus('AppBus', NAMES.appBus, 'Domain events of the content platform (realtime system)', props);
    this.appArchive = this.archive('AppArchive', 'AppBusByName', NAMES.appBus, this.appBus, props.appArchive, {
      name: name('app-archive'),
      keyStatementSid: 'AllowEventBridgeArchiveOfTheAppBus',
      description: (days) => `Application domain events flagged archive in the registry, kept ${days} days for audit and replay`,
    });
  }

  /**
   * An EventBridge Archive of `selection` on a bus (none when nothing is selected), encrypted
   * with the platform key. Its pattern is the selected (source, detail type) pairs.
   */
  private archive(
    id: string,
    busByNameId: string,
    bus: string,
    busConstruct: events.EventBus,
    selection: ArchiveSelection | undefined,
    naming: { name: string; description: (days: number) => string; keyStatementSid: string },
  ): events.Archive | undefined {
    if (!selection || selection.kinds.length === 0) return undefined;
    const sources = [...new Set(selection.kinds.map((k) => k.source))].sort();
    const pattern: events.EventPattern =
      sources.length === 1
        ? { source: sources, detailType: selection.kinds.map((k) => k.detailType).sort() }
        : {
            // One alternative per source: a source with the detail types of another would
            // match events that were never selected.
            ...({
              $or: sources.map((source) => ({
                source: [source],
                'detail-type': selection.kinds.filter((k) => k.source === source).map((k) => k.detailType).sort(),
              })),
            } as events.EventPattern),
          };
    const sourceEventBus = events.EventBus.fromEventBusName(this, busByNameId, resourceName(this.envName, bus));
    // The key policy statements CDK's Archive would add for `kmsKey`, with an id per archive:
    // CDK gives every archive's statement the same id, which a key policy refuses (E3512).
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: naming.keyStatementSid,
        principals: [new iam.ServicePrincipal('events.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey', 'kms:ReEncrypt*'],
        resources: ['*'], // in a key policy, '*' means this key
        conditions: { StringEquals: { 'kms:EncryptionContext:aws:events:event-bus:arn': sourceEventBus.eventBusArn } },
      }),
    );
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'Allow EventBridge to call kms:DescribeKey',
        principals: [new iam.ServicePrincipal('events.amazonaws.com')],
        actions: ['kms:DescribeKey'],
        resources: ['*'],
      }),
    );
    const archive = new events.Archive(this, id, {
      archiveName: naming.name,
      description: naming.description(selection.retentionDays),
      // The bus by name, not by reference: the archive's key policy statement names its bus,
      // and a reference would make the key depend on the bus, which depends on the key.
      sourceEventBus,
      eventPattern: pattern,
      retention: Duration.days(selection.retentionDays),
    });
    (archive.node.defaultChild as events.CfnArchive).kmsKeyIdentifier = this.key.keyArn;
    archive.node.addDependency(busConstruct);
    return archive;
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
