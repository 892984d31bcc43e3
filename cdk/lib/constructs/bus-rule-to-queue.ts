import { Duration, Validations } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { DEFAULT_RULE_TARGET_DELIVERY, type RuleTargetDelivery } from './defaults';

export interface BusRuleToQueueProps {
  /** Retries and maximum event age before the DLQ. Default {@link DEFAULT_RULE_TARGET_DELIVERY}. */
  readonly delivery?: RuleTargetDelivery;
  readonly bus: events.IEventBus;
  readonly ruleName: string;
  readonly description: string;
  /** Generated from the topic registry (see `interfacePattern`). */
  readonly eventPattern: events.EventPattern;
  /**
   * Only events of these tenants (`detail.tenantId`), for a consumer that serves some tenants;
   * none delivers every tenant's events. An empty list is refused (it would match nothing).
   */
  readonly tenantIds?: string[];
  /** The consumer queue and the delivery DLQ, owned by the stateful stack (`ConsumerInbox`). */
  readonly queueArn: string;
  readonly deliveryDeadLetterQueueArn: string;
}

/**
 * The stateless half of "bus rule → queue": the rule and its target, with retries and a DLQ
 * for undeliverable events. The queues' policies (which name this rule) live with the queues.
 */
export class BusRuleToQueue extends Construct {
  readonly rule: events.Rule;

  constructor(scope: Construct, id: string, props: BusRuleToQueueProps) {
    super(scope, id);
    const delivery = props.delivery ?? DEFAULT_RULE_TARGET_DELIVERY;
    // Imported, not passed as objects: the target must not try to edit the queues' policies,
    // which belong to the stateful stack.
    const queue = sqs.Queue.fromQueueArn(this, 'Queue', props.queueArn);
    const deliveryDlq = sqs.Queue.fromQueueArn(this, 'DeliveryDlq', props.deliveryDeadLetterQueueArn);
    if (props.tenantIds && props.tenantIds.length === 0) {
      throw new Error(`${props.ruleName}: tenantIds is empty, so the rule would match nothing; leave it out for all tenants`);
    }
    const eventPattern: events.EventPattern = props.tenantIds
      ? { ...props.eventPattern, detail: { ...(props.eventPattern.detail ?? {}), tenantId: [...props.tenantIds].sort() } }
      : props.eventPattern;
    this.rule = new events.Rule(this, 'Rule', {
      ruleName: props.ruleName,
      description: props.description,
      eventBus: props.bus,
      eventPattern,
    });
    this.rule.addTarget(
      new targets.SqsQueue(queue, {
        deadLetterQueue: deliveryDlq,
        retryAttempts: delivery.retryAttempts,
        maxEventAge: Duration.minutes(delivery.maxEventAgeMinutes),
      }),
    );
    Validations.of(this.rule).acknowledge({
      id: '@aws-cdk/aws-events:ruleUnresolvedEnvironment',
      reason:
        'Stacks may be account-agnostic (the deploying credentials pick the account); the rule and its queues ' +
        'are in one Stage, so always in the same account and region.',
    });
  }
}
