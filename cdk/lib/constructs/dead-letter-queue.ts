import { type RemovalPolicy, Validations } from 'aws-cdk-lib';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { alarmToTopic } from './alarms';
import { DEFAULT_DLQ_DEPTH_THRESHOLD, DLQ_RETENTION, secureQueueProps } from './defaults';

export interface AlarmedDeadLetterQueueProps {
  readonly key: kms.IKey;
  readonly alarmTopic: sns.ITopic;
  readonly queueName: string;
  /** What lands here, for the alarm description. */
  readonly holds: string;
  /** Default {@link DEFAULT_DLQ_DEPTH_THRESHOLD}. */
  readonly depthThreshold?: number;
  /** Default RETAIN. */
  readonly removalPolicy?: RemovalPolicy;
}

/** A dead-letter queue with an alarm on its depth: nothing piles up unseen. */
export class AlarmedDeadLetterQueue extends Construct {
  readonly queue: sqs.Queue;
  readonly alarm: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: AlarmedDeadLetterQueueProps) {
    super(scope, id);
    this.queue = new sqs.Queue(this, 'Queue', {
      ...secureQueueProps(props.key, { removalPolicy: props.removalPolicy }),
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
    this.alarm = alarmToTopic(
      this,
      'DepthAlarm',
      this.queue.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum' }),
      props.alarmTopic,
      {
        alarmName: `${props.queueName}-depth`,
        alarmDescription: `${props.queueName} holds ${props.holds}. Inspect the messages, fix the cause, then redrive.`,
        threshold: props.depthThreshold ?? DEFAULT_DLQ_DEPTH_THRESHOLD,
        notifyOk: true,
      },
    );
  }
}
