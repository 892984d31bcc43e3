import { Duration, type RemovalPolicy, Stack } from 'aws-cdk-lib';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { ruleArn } from '../naming';
import { alarmToTopic } from './alarms';
import { AlarmedDeadLetterQueue } from './dead-letter-queue';
import {
  DEFAULT_CONSUMER_MAX_AGE_MINUTES,
  DEFAULT_MAX_RECEIVE_COUNT,
  DEFAULT_QUEUE_RETENTION_DAYS,
  secureQueueProps,
} from './defaults';
import { allowEventBridgeDelivery } from './policies';

export interface ConsumerInboxProps {
  readonly key: kms.IKey;
  readonly alarmTopic: sns.ITopic;
  /** How long an unconsumed message stays. Default {@link DEFAULT_QUEUE_RETENTION_DAYS}. */
  readonly retentionDays?: number;
  /** Deliveries before a message moves to the DLQ. Default {@link DEFAULT_MAX_RECEIVE_COUNT}. */
  readonly maxReceiveCount?: number;
  /**
   * Age of the oldest message at which the age alarm fires; must be under the retention.
   * Default {@link DEFAULT_CONSUMER_MAX_AGE_MINUTES}.
   */
  readonly maxAgeMinutes?: number;
  /** Passed to both DLQs' depth alarms. */
  readonly dlqDepthThreshold?: number;
  /** Default RETAIN. */
  readonly removalPolicy?: RemovalPolicy;
  /** e.g. `eventfabric-dev-session-consumer` */
  readonly queueName: string;
  /** The bus and the name of the rule that feeds this inbox (the rule lives in the stateless stack). */
  readonly busName: string;
  readonly ruleName: string;
}

/**
 * The stateful half of "bus rule → queue": the consumer queue with its DLQ (for messages the
 * consumer cannot process) and the rule target's DLQ (for events EventBridge cannot deliver),
 * both alarmed, and an alarm on the age of the queue's oldest message, which fires when the
 * consumer stops, falls behind or was never deployed (the queue itself fills silently otherwise).
 * Only the named rule may send to them.
 *
 * The rule is referenced by its ARN, built from names, so this stack never depends on the
 * stateless stack that owns the rule.
 */
export class ConsumerInbox extends Construct {
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: AlarmedDeadLetterQueue;
  readonly deliveryDeadLetterQueue: AlarmedDeadLetterQueue;
  readonly ageAlarm: cloudwatch.Alarm;
  readonly ruleName: string;

  constructor(scope: Construct, id: string, props: ConsumerInboxProps) {
    super(scope, id);
    const { key, alarmTopic, removalPolicy } = props;
    const retentionDays = props.retentionDays ?? DEFAULT_QUEUE_RETENTION_DAYS;
    const maxReceiveCount = props.maxReceiveCount ?? DEFAULT_MAX_RECEIVE_COUNT;
    const maxAgeMinutes = props.maxAgeMinutes ?? DEFAULT_CONSUMER_MAX_AGE_MINUTES;
    const dlq = { key, alarmTopic, removalPolicy, depthThreshold: props.dlqDepthThreshold };
    this.ruleName = props.ruleName;
    this.deadLetterQueue = new AlarmedDeadLetterQueue(this, 'Dlq', {
      ...dlq,
      queueName: `${props.queueName}-dlq`,
      holds: `messages its consumer failed to process ${maxReceiveCount} times`,
    });
    this.deliveryDeadLetterQueue = new AlarmedDeadLetterQueue(this, 'DeliveryDlq', {
      ...dlq,
      queueName: `${props.queueName}-delivery-dlq`,
      holds: `events the rule ${props.ruleName} could not deliver to ${props.queueName}`,
    });
    this.queue = new sqs.Queue(this, 'Queue', {
      ...secureQueueProps(key, { retentionDays, removalPolicy }),
      queueName: props.queueName,
      deadLetterQueue: { queue: this.deadLetterQueue.queue, maxReceiveCount },
    });

    const maxAge = Duration.minutes(maxAgeMinutes);
    if (maxAge.toSeconds() >= Duration.days(retentionDays).toSeconds()) {
      throw new Error(
        `${props.queueName}: alarms.consumerMaxAgeMinutes (${maxAgeMinutes}) must be under the queue retention ` +
          `(${retentionDays} days), or messages expire before the alarm fires`,
      );
    }
    this.ageAlarm = alarmToTopic(
      this,
      'AgeAlarm',
      this.queue.metricApproximateAgeOfOldestMessage({ statistic: 'Maximum', period: Duration.minutes(5) }),
      alarmTopic,
      {
        alarmName: `${props.queueName}-oldest-message-age`,
        alarmDescription:
          `The oldest message in ${props.queueName} has waited ${maxAgeMinutes} minutes or more: ` +
          `its consumer is stopped, failing slowly or behind. Messages expire after ${retentionDays} days.`,
        threshold: maxAge.toSeconds(),
        notifyOk: true,
      },
    );

    const stack = Stack.of(this);
    const sourceArn = ruleArn(stack.partition, stack.region, stack.account, props.busName, props.ruleName);
    for (const queue of [this.queue, this.deliveryDeadLetterQueue.queue]) {
      allowEventBridgeDelivery(queue, 'AllowDeliveryFromItsRule', sourceArn);
    }
  }
}
