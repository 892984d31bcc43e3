import { Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { EnvConfig } from '../config';
import { ruleArn } from '../naming';
import { secureQueueProps } from './defaults';
import { AlarmedDeadLetterQueue } from './dead-letter-queue';

export interface ConsumerInboxProps {
  readonly key: kms.IKey;
  readonly config: EnvConfig;
  readonly alarmTopic: sns.ITopic;
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
    const { key, config, alarmTopic } = props;
    this.ruleName = props.ruleName;
    this.deadLetterQueue = new AlarmedDeadLetterQueue(this, 'Dlq', {
      key,
      config,
      alarmTopic,
      queueName: `${props.queueName}-dlq`,
      holds: `messages its consumer failed to process ${config.queues.maxReceiveCount} times`,
    });
    this.deliveryDeadLetterQueue = new AlarmedDeadLetterQueue(this, 'DeliveryDlq', {
      key,
      config,
      alarmTopic,
      queueName: `${props.queueName}-delivery-dlq`,
      holds: `events the rule ${props.ruleName} could not deliver to ${props.queueName}`,
    });
    this.queue = new sqs.Queue(this, 'Queue', {
      ...secureQueueProps(key, config),
      queueName: props.queueName,
      deadLetterQueue: { queue: this.deadLetterQueue.queue, maxReceiveCount: config.queues.maxReceiveCount },
    });

    const maxAge = Duration.minutes(config.alarms.consumerMaxAgeMinutes);
    if (maxAge.toSeconds() >= Duration.days(config.queues.retentionDays).toSeconds()) {
      throw new Error(
        `${props.queueName}: alarms.consumerMaxAgeMinutes (${config.alarms.consumerMaxAgeMinutes}) must be under the queue retention ` +
          `(${config.queues.retentionDays} days), or messages expire before the alarm fires`,
      );
    }
    this.ageAlarm = this.queue
      .metricApproximateAgeOfOldestMessage({ statistic: 'Maximum', period: Duration.minutes(5) })
      .createAlarm(this, 'AgeAlarm', {
        alarmName: `${props.queueName}-oldest-message-age`,
        alarmDescription:
          `The oldest message in ${props.queueName} has waited ${config.alarms.consumerMaxAgeMinutes} minutes or more: ` +
          `its consumer is stopped, failing slowly or behind. Messages expire after ${config.queues.retentionDays} days.`,
        threshold: maxAge.toSeconds(),
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    this.ageAlarm.addAlarmAction(new cwActions.SnsAction(alarmTopic));
    this.ageAlarm.addOkAction(new cwActions.SnsAction(alarmTopic));

    const stack = Stack.of(this);
    const sourceArn = ruleArn(stack.partition, stack.region, stack.account, props.busName, props.ruleName);
    for (const queue of [this.queue, this.deliveryDeadLetterQueue.queue]) {
      queue.addToResourcePolicy(
        new iam.PolicyStatement({
          sid: 'AllowDeliveryFromItsRule',
          principals: [new iam.ServicePrincipal('events.amazonaws.com')],
          actions: ['sqs:SendMessage'],
          resources: [queue.queueArn],
          conditions: { ArnEquals: { 'aws:SourceArn': sourceArn } },
        }),
      );
    }
  }
}
