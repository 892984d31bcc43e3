import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Validations } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import type { EnvConfig } from '../config';
import { DLQ_RETENTION, secureQueueProps } from './defaults';

export interface AlarmedDeadLetterQueueProps {
  readonly key: kms.IKey;
  readonly config: EnvConfig;
  readonly alarmTopic: sns.ITopic;
  readonly queueName: string;
  /** What lands here, for the alarm description. */
  readonly holds: string;
}

/** A dead-letter queue with an alarm on its depth: nothing piles up unseen. */
export class AlarmedDeadLetterQueue extends Construct {
  readonly queue: sqs.Queue;
  readonly alarm: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: AlarmedDeadLetterQueueProps) {
    super(scope, id);
    this.queue = new sqs.Queue(this, 'Queue', {
      ...secureQueueProps(props.key, props.config),
      queueName: props.queueName,
      retentionPeriod: DLQ_RETENTION,
    });
    Validations.of(this.queue).acknowledge(
      {
        id: 'AwsSolutions-SQS3',
        reason: 'This queue is itself a dead-letter queue (of a queue or of a rule target); it needs no DLQ of its own.',
      },
      {
        id: 'Serverless-SQSRedrivePolicy',
        reason: 'This queue is itself a dead-letter queue; a DLQ of a DLQ would only move the problem. Its depth alarm is the safeguard.',
      },
    );
    this.alarm = this.queue
      .metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum' })
      .createAlarm(this, 'DepthAlarm', {
        alarmName: `${props.queueName}-depth`,
        alarmDescription: `${props.queueName} holds ${props.holds}. Inspect the messages, fix the cause, then redrive.`,
        threshold: props.config.alarms.dlqDepthThreshold,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    this.alarm.addAlarmAction(new cwActions.SnsAction(props.alarmTopic));
    this.alarm.addOkAction(new cwActions.SnsAction(props.alarmTopic));
  }
}
