import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { METRICS_NAMESPACE } from '../naming';

export interface TopicAlarmProps {
  readonly alarmName: string;
  /** What fired and what to do: the text an on-call engineer reads first. */
  readonly alarmDescription: string;
  readonly threshold: number;
  /** Default 1. */
  readonly evaluationPeriods?: number;
  /** Default: at or above the threshold. */
  readonly comparisonOperator?: cloudwatch.ComparisonOperator;
  /** Default: missing data is not breaching (no traffic is no problem). */
  readonly treatMissingData?: cloudwatch.TreatMissingData;
  /** Also notify when the alarm clears (for conditions someone works on, like a DLQ). */
  readonly notifyOk?: boolean;
}

/**
 * An alarm on `metric` that notifies the platform's alarm topic: the shape of every alarm of
 * the platform, with its defaults in one place.
 */
export function alarmToTopic(
  scope: Construct,
  id: string,
  metric: cloudwatch.Metric | cloudwatch.MathExpression,
  topic: sns.ITopic,
  props: TopicAlarmProps,
): cloudwatch.Alarm {
  const alarm = metric.createAlarm(scope, id, {
    alarmName: props.alarmName,
    alarmDescription: props.alarmDescription,
    threshold: props.threshold,
    evaluationPeriods: props.evaluationPeriods ?? 1,
    comparisonOperator: props.comparisonOperator ?? cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    treatMissingData: props.treatMissingData ?? cloudwatch.TreatMissingData.NOT_BREACHING,
  });
  alarm.addAlarmAction(new cwActions.SnsAction(topic));
  if (props.notifyOk) alarm.addOkAction(new cwActions.SnsAction(topic));
  return alarm;
}

/** A function's EMF counter (dimension `function`), summed over `minutes` (default 5). */
export function emfCounter(functionDimension: string, metricName: string, minutes = 5): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: METRICS_NAMESPACE,
    metricName,
    dimensionsMap: { function: functionDimension },
    statistic: cloudwatch.Stats.SUM,
    period: Duration.minutes(minutes),
  });
}
