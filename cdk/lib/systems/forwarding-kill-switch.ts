import { Duration, type RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import type { EnvName } from '../config';
import { alarmToTopic, emfCounter } from '../constructs/alarms';
import type { RuleTargetDelivery } from '../constructs/defaults';
import type { RustFunction } from '../constructs/rust-function';
import { NAMES, resourceName } from '../naming';

/** The parameter's name: `on` or `off`. */
export function killSwitchParameterName(envName: EnvName): string {
  return `/eventfabric/${envName}/forwarding/enabled`;
}

export interface ForwardingKillSwitchProps {
  readonly envName: EnvName;
  /** The forward function: it reads the switch (10 s cache). */
  readonly forwardFunction: RustFunction;
  readonly settings: { readonly failureRatePercent: number; readonly minEvents: number };
  readonly alarmTopic: sns.ITopic;
  readonly deadLetterQueueArn: string;
  readonly delivery: RuleTargetDelivery;
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
}

/**
 * Forwarding's kill switch (README, "Forwarding kill switch"): the SSM parameter
 * `/eventfabric/<env>/forwarding/enabled` (`on`/`off`) the forward function reads, an alarm on
 * the share of events the buses refused, and what flips the switch off when that alarm fires:
 * its state change on the default bus → a rule (retries, alarmed DLQ) → an Express state
 * machine whose one task is `ssm:PutParameter` (no function to deploy or break). It is switched
 * back on by hand, once the cause is understood.
 */
export class ForwardingKillSwitch extends Construct {
  readonly parameter: ssm.StringParameter;
  readonly alarm: cloudwatch.Alarm;
  readonly stateMachine: sfn.StateMachine;
  readonly rule: events.Rule;

  constructor(scope: Construct, id: string, props: ForwardingKillSwitchProps) {
    super(scope, id);
    const name = (...parts: string[]) => resourceName(props.envName, ...parts);
    const { settings } = props;
    if (!(settings.failureRatePercent > 0 && settings.failureRatePercent <= 100) || !(settings.minEvents >= 1)) {
      throw new Error(
        `forwardFunction.killSwitch: failureRatePercent must be in (0, 100] and minEvents at least 1, not ${JSON.stringify(settings)}`,
      );
    }

    // CloudFormation writes the value when the parameter is created (or this value changes):
    // a flip by the alarm or by hand stays until someone flips it again.
    this.parameter = new ssm.StringParameter(this, 'Parameter', {
      parameterName: killSwitchParameterName(props.envName),
      stringValue: 'on',
      description: `Forwarding of interface events in ${props.envName}: on | off (the forward function answers 503 while off). README, "Forwarding kill switch".`,
    });
    const fn = props.forwardFunction.function;
    fn.addEnvironment('FORWARDING_SWITCH_PARAMETER', this.parameter.parameterName);
    fn.addToRolePolicy(
      new iam.PolicyStatement({ sid: 'ReadTheKillSwitch', actions: ['ssm:GetParameter'], resources: [this.parameter.parameterArn] }),
    );

    // The share of the events of 5 minutes the buses refused, once there are enough of them.
    const counter = (metricName: string) => emfCounter('forward-api', metricName);
    const rate = new cloudwatch.MathExpression({
      expression: `IF(FILL(forwarded, 0) + FILL(failed, 0) >= ${settings.minEvents}, 100 * FILL(failed, 0) / (FILL(forwarded, 0) + FILL(failed, 0)), 0)`,
      usingMetrics: { forwarded: counter('EventsForwarded'), failed: counter('ForwardFailures') },
      label: 'Forward failure rate (%)',
      period: Duration.minutes(5),
    });
    this.alarm = alarmToTopic(this, 'FailureRateAlarm', rate, props.alarmTopic, {
      alarmName: name('forward-failure-rate'),
      alarmDescription:
        `More than ${settings.failureRatePercent} % of valid interface events (at least ${settings.minEvents} in 5 minutes) were refused by their bus: ` +
        `forwarding has been switched OFF (${this.parameter.parameterName} = off; clients get 503 and keep their events). ` +
        'Find the cause (bus, permissions, a bad deploy), then switch it back on by hand: README, "Forwarding kill switch".',
      threshold: settings.failureRatePercent,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      notifyOk: true,
    });

    // The flip: one SDK call from Step Functions.
    const role = new iam.Role(this, 'StateMachineRole', {
      assumedBy: new iam.ServicePrincipal('states.amazonaws.com'),
      description: `Execution role of ${name(NAMES.forwardKillSwitch)}: writes the kill switch parameter only`,
    });
    const logGroup = new logs.LogGroup(this, 'Logs', {
      logGroupName: `/aws/vendedlogs/states/${name(NAMES.forwardKillSwitch)}`,
      retention: props.logRetention,
      removalPolicy: props.removalPolicy,
    });
    const switchOff = new tasks.CallAwsService(this, 'SwitchForwardingOff', {
      service: 'ssm',
      action: 'putParameter',
      parameters: { Name: this.parameter.parameterName, Value: 'off', Overwrite: true },
      iamResources: [this.parameter.parameterArn],
      iamAction: 'ssm:PutParameter',
      resultPath: sfn.JsonPath.DISCARD,
    });
    switchOff.addRetry({ maxAttempts: 6, interval: Duration.seconds(1), backoffRate: 2 });
    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      stateMachineName: name(NAMES.forwardKillSwitch),
      stateMachineType: sfn.StateMachineType.EXPRESS,
      definitionBody: sfn.DefinitionBody.fromChainable(switchOff),
      role,
      timeout: Duration.minutes(1),
      logs: { destination: logGroup, level: sfn.LogLevel.ALL, includeExecutionData: true },
      tracingEnabled: true,
    });
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'Added by CDK for Express logging (logs:CreateLogDelivery and the other log-delivery actions) and X-Ray ' +
        '(xray:PutTraceSegments …): none of them supports resource-level permissions.',
    });

    // The alarm's state change (CloudWatch puts it on the default bus) → the state machine.
    this.rule = new events.Rule(this, 'Rule', {
      ruleName: name(NAMES.forwardKillSwitch),
      description: `${this.alarm.alarmName} in ALARM switches forwarding off`,
      eventPattern: {
        source: ['aws.cloudwatch'],
        detailType: ['CloudWatch Alarm State Change'],
        resources: [this.alarm.alarmArn],
        detail: { state: { value: ['ALARM'] } },
      },
    });
    this.rule.addTarget(
      new targets.SfnStateMachine(this.stateMachine, {
        deadLetterQueue: sqs.Queue.fromQueueArn(this, 'Dlq', props.deadLetterQueueArn),
        retryAttempts: props.delivery.retryAttempts,
        maxEventAge: Duration.minutes(props.delivery.maxEventAgeMinutes),
      }),
    );
    Validations.of(this.rule).acknowledge({
      id: '@aws-cdk/aws-events:ruleUnresolvedEnvironment',
      reason: 'Stacks may be account-agnostic; the rule and its targets are in one Stage, so one account and region.',
    });
  }
}
