import { type RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import type { EnvName } from '../config';
import { NAMES, resourceName, ruleArn } from '../naming';
import { ConsumerInbox } from '../constructs/consumer-inbox';
import { AlarmedDeadLetterQueue } from '../constructs/dead-letter-queue';
import { allowEventBridgeDelivery } from '../constructs/policies';

export interface SessionPipelineStateProps {
  readonly envName: EnvName;
  readonly key: kms.IKey;
  readonly alarmTopic: sns.ITopic;
  /** The bus the trigger and failure rules are on (the rules are `SessionPipeline`'s). */
  readonly sessionBusName: string;
  readonly removalPolicy: RemovalPolicy;
  readonly pointInTimeRecovery: boolean;
  readonly dlqDepthThreshold?: number;
  /** The failures queue: retention, redelivery and age alarm. */
  readonly failures?: {
    readonly retentionDays?: number;
    readonly maxReceiveCount?: number;
    readonly maxAgeMinutes?: number;
  };
}

/**
 * The stateful half of the session pipeline: the summaries table (platform key; point-in-time
 * recovery where the environment asks for it), the DLQ of the trigger rule (summaries
 * EventBridge could not hand to the state machine), and the queue `session.pipeline.failed`
 * is routed to. The stateless half (`SessionPipeline`) writes and routes into these by name.
 */
export class SessionPipelineState extends Construct {
  /** One item per conversation (`tenantId`, `conversationId`): the enriched, masked summary. */
  readonly table: dynamodb.Table;
  readonly triggerDeadLetterQueue: AlarmedDeadLetterQueue;
  readonly failures: ConsumerInbox;

  constructor(scope: Construct, id: string, props: SessionPipelineStateProps) {
    super(scope, id);
    const { key, alarmTopic, removalPolicy } = props;
    const name = (...parts: string[]) => resourceName(props.envName, ...parts);

    this.table = new dynamodb.Table(this, 'Summaries', {
      tableName: name('session-summaries'),
      partitionKey: { name: 'tenantId', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'conversationId', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: key,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: props.pointInTimeRecovery },
      removalPolicy,
    });
    if (!props.pointInTimeRecovery) {
      Validations.of(this.table).acknowledge({
        id: 'AwsSolutions-DDB3',
        reason:
          'Point-in-time recovery is on in prod only (config sessionPipeline.pointInTimeRecovery); dev and staging ' +
          'summaries can be rebuilt by replaying the session archive (README, "Session pipeline").',
      });
    }

    const stack = Stack.of(this);
    const triggerRule = name(NAMES.sessionPipelineTrigger);
    this.triggerDeadLetterQueue = new AlarmedDeadLetterQueue(this, 'TriggerDlq', {
      key,
      alarmTopic,
      removalPolicy,
      depthThreshold: props.dlqDepthThreshold,
      queueName: `${triggerRule}-dlq`,
      holds: `session.summary.final events the rule ${triggerRule} could not hand to the session pipeline`,
    });
    allowEventBridgeDelivery(
      this.triggerDeadLetterQueue.queue,
      'AllowDeliveryFromItsRule',
      ruleArn(stack.partition, stack.region, stack.account, props.sessionBusName, triggerRule),
    );

    this.failures = new ConsumerInbox(this, 'Failures', {
      key,
      alarmTopic,
      removalPolicy,
      dlqDepthThreshold: props.dlqDepthThreshold,
      retentionDays: props.failures?.retentionDays,
      maxReceiveCount: props.failures?.maxReceiveCount,
      maxAgeMinutes: props.failures?.maxAgeMinutes,
      queueName: name(NAMES.sessionPipelineFailures),
      busName: props.sessionBusName,
      ruleName: name(NAMES.sessionPipelineFailures),
    });
  }
}
