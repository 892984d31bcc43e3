import * as fs from 'node:fs';
import * as path from 'node:path';
import { type CfnResource, Duration, type RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import type { EnvConfig, EnvName } from '../config';
import { METRICS_NAMESPACE, NAMES, resourceName } from '../naming';
import { type RegistryManifest, busSource, registryTopic, topicPattern } from '../registry';
import { alarmToTopic } from '../constructs/alarms';
import { BusRuleToQueue } from '../constructs/bus-rule-to-queue';
import { DEFAULT_RULE_TARGET_DELIVERY, type RuleTargetDelivery } from '../constructs/defaults';
import { keyUseThroughServices, putEventsConditions } from '../constructs/policies';
import { RustFunction } from '../constructs/rust-function';
import { WORKSPACE_ROOT } from '../constructs/rust-build';

/** The definition, in the repository's `stepfunctions/` (JSONPath ASL, `${…}` placeholders). */
export const SESSION_PIPELINE_DEFINITION = path.join(WORKSPACE_ROOT, 'stepfunctions', 'session-pipeline.asl.json');
/** The topic that starts the pipeline, and the one its failure path publishes. */
export const TRIGGER_TOPIC = 'session.summary.final';
export const FAILURE_TOPIC = 'session.pipeline.failed';

/** The steps, in order: the definition's `${<Step>FunctionArn}` placeholders and `PIPELINE_STEP`. */
export const STEPS = ['summary', 'sentiment', 'compliance', 'persistence'] as const;

export interface SessionPipelineProps {
  readonly envName: EnvName;
  readonly registry: RegistryManifest;
  readonly settings: EnvConfig['sessionPipeline'];
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
  readonly delivery?: RuleTargetDelivery;
  /** From the platform. */
  readonly key: kms.IKey;
  readonly alarmTopic: sns.ITopic;
  readonly sessionBus: events.IEventBus;
  /** From `SessionPipelineState`. */
  readonly table: dynamodb.ITable;
  readonly triggerDeadLetterQueueArn: string;
  readonly failures: { readonly queueArn: string; readonly deliveryDeadLetterQueueArn: string };
}

/**
 * The session pipeline, stateless half: the four step functions, the Express state machine
 * loaded from `stepfunctions/session-pipeline.asl.json`, the rule that starts it on
 * `session.summary.final` (retries, maximum age, alarmed DLQ), the rule that routes its
 * `session.pipeline.failed` events to the failures queue, and alarms on failed and timed-out
 * executions. The state machine may invoke exactly its four functions and put events on the
 * session bus; each function may do only what its step does.
 */
export class SessionPipeline extends Construct {
  readonly functions: Record<(typeof STEPS)[number], RustFunction>;
  readonly stateMachine: sfn.StateMachine;
  readonly triggerRule: events.Rule;

  constructor(scope: Construct, id: string, props: SessionPipelineProps) {
    super(scope, id);
    const { settings, registry } = props;
    const name = (...parts: string[]) => resourceName(props.envName, ...parts);
    const region = Stack.of(this).region;
    const delivery = props.delivery ?? DEFAULT_RULE_TARGET_DELIVERY;

    const descriptions: Record<(typeof STEPS)[number], string> = {
      summary: 'Session pipeline step 1: normalize a session.summary.final event',
      sentiment: 'Session pipeline step 2: VADER sentiment of the summary, its turns and participants',
      compliance: 'Session pipeline step 3: PII and policy terms; pass, flag or block; masked text',
      persistence: 'Session pipeline step 4: the masked summary into the summaries table, once per version',
    };
    const environment: Record<(typeof STEPS)[number], Record<string, string>> = {
      summary: {},
      sentiment: {},
      compliance: {
        COMPLIANCE_POLICY: JSON.stringify({
          blockTerms: settings.compliance.blockTerms,
          flagTerms: settings.compliance.flagTerms,
        }),
      },
      persistence: { SUMMARIES_TABLE_NAME: props.table.tableName },
    };
    const fns = {} as Record<(typeof STEPS)[number], RustFunction>;
    for (const step of STEPS) {
      const fn = new RustFunction(this, `${capitalize(step)}Function`, {
        // One binary for the four steps; PIPELINE_STEP picks this function's.
        binary: 'session-pipeline',
        crateDir: 'session_pipeline',
        functionName: name('session', step),
        description: descriptions[step],
        memoryMb: settings.memoryMb,
        timeout: Duration.seconds(settings.timeoutSeconds),
        environment: { PIPELINE_STEP: step, ...environment[step], METRICS_NAMESPACE },
        logRetention: props.logRetention,
        removalPolicy: props.removalPolicy,
      });
      Validations.of(fn.function).acknowledge({
        id: 'Serverless-LambdaDLQ',
        reason:
          'Invoked synchronously by the state machine, which retries it and catches its failures into ' +
          'session.pipeline.failed (failures queue, alarmed); an async DLQ would never receive anything.',
      });
      fns[step] = fn;
    }
    this.functions = fns;
    // Persistence writes one item per version, conditionally; nothing reads or deletes.
    const persistence = fns.persistence.function;
    persistence.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'WriteSummaries',
        actions: ['dynamodb:PutItem'],
        resources: [props.table.tableArn],
      }),
    );
    persistence.addToRolePolicy(keyUseThroughServices('UsePlatformKeyThroughDynamoDb', props.key, region, ['dynamodb']));

    // The state machine: its own role, with exactly what the definition's tasks call.
    const failure = registryTopic(registry, FAILURE_TOPIC);
    topicPattern(registry, FAILURE_TOPIC, 'session'); // refuses a topic that is not published to this bus
    const role = new iam.Role(this, 'StateMachineRole', {
      assumedBy: new iam.ServicePrincipal('states.amazonaws.com'),
      description: `Execution role of ${name('session-pipeline')}: its four step functions and the session bus`,
    });
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'InvokeTheSteps',
        actions: ['lambda:InvokeFunction'],
        resources: STEPS.map((s) => fns[s].alias.functionArn),
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'PublishPipelineFailures',
        actions: ['events:PutEvents'],
        resources: [props.sessionBus.eventBusArn],
        conditions: putEventsConditions([failure.source as string], [failure.topic]),
      }),
    );
    const logGroup = new logs.LogGroup(this, 'Logs', {
      logGroupName: `/aws/vendedlogs/states/${name('session-pipeline')}`,
      retention: props.logRetention,
      removalPolicy: props.removalPolicy,
    });
    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      stateMachineName: name('session-pipeline'),
      stateMachineType: sfn.StateMachineType.EXPRESS,
      definitionBody: sfn.DefinitionBody.fromString(fs.readFileSync(SESSION_PIPELINE_DEFINITION, 'utf8')),
      definitionSubstitutions: {
        // The live aliases: CodeDeploy shifts them (RustFunction).
        SummaryFunctionArn: fns.summary.alias.functionArn,
        SentimentFunctionArn: fns.sentiment.alias.functionArn,
        ComplianceFunctionArn: fns.compliance.alias.functionArn,
        PersistenceFunctionArn: fns.persistence.alias.functionArn,
        SessionBusName: props.sessionBus.eventBusName,
        FailureSource: busSource(failure),
        FailureDetailType: failure.detailType,
      },
      role,
      // Every execution's events, without their input and output: summaries carry personal data.
      logs: { destination: logGroup, level: sfn.LogLevel.ALL, includeExecutionData: false },
      tracingEnabled: true,
    });
    // cfn-lint's E1029 reads the placeholders as Fn::Sub parameters, like CDK's validator below.
    (this.stateMachine.node.defaultChild as CfnResource).addMetadata('cfn-lint', {
      config: { ignore_checks: ['E1029'] },
    });
    Validations.of(this.stateMachine).acknowledge({
      id: 'CloudFormation-Validate::E1029',
      reason:
        'The ${…} placeholders in DefinitionString are Step Functions definition substitutions, resolved from the ' +
        "resource's DefinitionSubstitutions at deploy time, not CloudFormation Fn::Sub parameters.",
    });
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'Added by CDK for Express logging (logs:CreateLogDelivery and the other log-delivery actions) and X-Ray ' +
        '(xray:PutTraceSegments …): none of them supports resource-level permissions.',
    });

    // session.summary.final -> the state machine, retried, then its DLQ (stateful, alarmed).
    this.triggerRule = new events.Rule(this, 'TriggerRule', {
      ruleName: name(NAMES.sessionPipelineTrigger),
      description: `${TRIGGER_TOPIC} starts the session pipeline`,
      eventBus: props.sessionBus,
      eventPattern: topicPattern(registry, TRIGGER_TOPIC, 'session'),
    });
    this.triggerRule.addTarget(
      new targets.SfnStateMachine(this.stateMachine, {
        deadLetterQueue: sqs.Queue.fromQueueArn(this, 'TriggerDlq', props.triggerDeadLetterQueueArn),
        retryAttempts: delivery.retryAttempts,
        maxEventAge: Duration.minutes(delivery.maxEventAgeMinutes),
      }),
    );
    Validations.of(this.triggerRule).acknowledge({
      id: '@aws-cdk/aws-events:ruleUnresolvedEnvironment',
      reason: 'Stacks may be account-agnostic; the rule and its targets are in one Stage, so one account and region.',
    });

    // session.pipeline.failed -> the failures queue (stateful, with its DLQs and age alarm).
    new BusRuleToQueue(this, 'FailuresRule', {
      delivery,
      bus: props.sessionBus,
      ruleName: name(NAMES.sessionPipelineFailures),
      description: `${FAILURE_TOPIC} to the session pipeline failures queue`,
      eventPattern: topicPattern(registry, FAILURE_TOPIC, 'session'),
      queueArn: props.failures.queueArn,
      deliveryDeadLetterQueueArn: props.failures.deliveryDeadLetterQueueArn,
    });

    // Failed executions include caught ones (each also published session.pipeline.failed);
    // timed-out ones published nothing.
    const metric = (metricName: string) =>
      new cloudwatch.Metric({
        namespace: 'AWS/States',
        metricName,
        dimensionsMap: { StateMachineArn: this.stateMachine.stateMachineArn },
        statistic: cloudwatch.Stats.SUM,
        period: Duration.minutes(5),
      });
    alarmToTopic(this, 'FailedExecutionsAlarm', metric('ExecutionsFailed'), props.alarmTopic, {
      alarmName: name('session-pipeline-failed'),
      alarmDescription:
        'Session pipeline executions failed. Caught failures are in the session-pipeline-failures queue with step, ' +
        'error and cause; a failure without a message there means the failure event itself could not be published.',
      threshold: settings.failedExecutionsAlarmThreshold,
    });
    alarmToTopic(this, 'TimedOutExecutionsAlarm', metric('ExecutionsTimedOut'), props.alarmTopic, {
      alarmName: name('session-pipeline-timed-out'),
      alarmDescription:
        'Session pipeline executions timed out (nothing was published for them). Replay their sessions (README, "Session pipeline").',
      threshold: 1,
    });
  }
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
