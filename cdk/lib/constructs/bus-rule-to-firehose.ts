import { Duration, Validations } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { DEFAULT_RULE_TARGET_DELIVERY, type RuleTargetDelivery } from './defaults';

export interface BusRuleToFirehoseProps {
  /** Retries and maximum event age before the DLQ. Default {@link DEFAULT_RULE_TARGET_DELIVERY}. */
  readonly delivery?: RuleTargetDelivery;
  readonly bus: events.IEventBus;
  readonly ruleName: string;
  readonly description: string;
  /** Generated from the topic registry (see `interfacePattern`). */
  readonly eventPattern: events.EventPattern;
  /** The delivery stream and the rule target's DLQ, owned by the stateful stack. */
  readonly deliveryStreamArn: string;
  readonly deliveryDeadLetterQueueArn: string;
}

/**
 * A rule delivering the `detail` of matching events (the forwarded envelope: the columns of the
 * archive table) to a Firehose stream, with retries and a DLQ for events it cannot deliver.
 * aws-events-targets' Firehose target takes no DLQ or retry policy, so the target is bound here.
 */
export class BusRuleToFirehose extends Construct {
  readonly rule: events.Rule;
  readonly role: iam.Role;

  constructor(scope: Construct, id: string, props: BusRuleToFirehoseProps) {
    super(scope, id);
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('events.amazonaws.com'),
      description: `${props.ruleName}: put records into its Firehose stream`,
      inlinePolicies: {
        PutRecords: new iam.PolicyDocument({
          statements: [
            new iam.PolicyStatement({
              actions: ['firehose:PutRecord', 'firehose:PutRecordBatch'],
              resources: [props.deliveryStreamArn],
            }),
          ],
        }),
      },
    });
    this.rule = new events.Rule(this, 'Rule', {
      ruleName: props.ruleName,
      description: props.description,
      eventBus: props.bus,
      eventPattern: props.eventPattern,
    });
    const { deliveryStreamArn, deliveryDeadLetterQueueArn } = props;
    const delivery = props.delivery ?? DEFAULT_RULE_TARGET_DELIVERY;
    const role = this.role;
    this.rule.addTarget({
      bind: () => ({
        arn: deliveryStreamArn,
        role,
        input: events.RuleTargetInput.fromEventPath('$.detail'),
        deadLetterConfig: { arn: deliveryDeadLetterQueueArn },
        retryPolicy: {
          maximumRetryAttempts: delivery.retryAttempts,
          maximumEventAgeInSeconds: Duration.minutes(delivery.maxEventAgeMinutes).toSeconds(),
        },
      }),
    });
    Validations.of(this.rule).acknowledge({
      id: '@aws-cdk/aws-events:ruleUnresolvedEnvironment',
      reason:
        'Stacks may be account-agnostic (the deploying credentials pick the account); the rule and its stream ' +
        'are in one Stage, so always in the same account and region.',
    });
  }
}
