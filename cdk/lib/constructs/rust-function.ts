import * as fs from 'node:fs';
import * as path from 'node:path';
import { AssetHashType, type CfnResource, DockerImage, Duration, type RemovalPolicy, Stack, Tags, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as codedeploy from 'aws-cdk-lib/aws-codedeploy';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { TrafficShift } from '../config/types';
import { WORKSPACE_ROOT, buildWorkspaceOnce, registerBinary } from './rust-build';

/**
 * The context key under which a stage gives every function of its environment the traffic
 * shift of `delivery.trafficShift` (EventFabricStage sets it; all at once where unset).
 */
export const TRAFFIC_SHIFT_CONTEXT = 'eventfabric:trafficShift';

/** The alias every trigger of a function invokes, and CodeDeploy moves between versions. */
export const LIVE_ALIAS = 'live';

/** Error rate (percent of the alias's invocations in a minute) at which a deployment rolls back. */
export const ROLLBACK_ERROR_RATE_PERCENT = 5;
/** p99 duration, as a share of the timeout, that rolls a deployment back when held 2 minutes. */
export const ROLLBACK_LATENCY_SHARE = 0.8;

export interface RustFunctionProps {
  /** The cargo binary (`[[bin]] name`) and the crate directory under `lambdas/`. */
  readonly binary: string;
  readonly crateDir: string;
  readonly functionName: string;
  readonly description: string;
  readonly memoryMb: number;
  readonly timeout: Duration;
  readonly environment?: Record<string, string>;
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
}

/**
 * A Lambda function built from this cargo workspace for `provided.al2023`: explicit memory and
 * timeout, X-Ray active tracing, JSON logs in its own log group with retention, and a role
 * that may write to that log group and nothing else until granted more.
 */
export class RustFunction extends Construct {
  readonly function: lambda.Function;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;
  /**
   * `live`, on the function's current version: what every trigger invokes (API integrations,
   * rule targets, event source mappings, state machine tasks), so CodeDeploy can shift it.
   */
  readonly alias: lambda.Alias;
  /**
   * Moves `live` to each new version as `delivery.trafficShift` says, and back when the
   * deployment fails or one of its alarms fires: the error rate and p99 latency of the alias,
   * plus the business alarms the function's system adds ({@link addRollbackAlarm}).
   */
  readonly deployment: codedeploy.LambdaDeploymentGroup;

  constructor(scope: Construct, id: string, props: RustFunctionProps) {
    super(scope, id);
    registerBinary(props.binary);

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      logGroupName: `/aws/lambda/${props.functionName}`,
      retention: props.logRetention,
      removalPolicy: props.removalPolicy,
    });
    // An inline policy scoped to this log group instead of AWSLambdaBasicExecutionRole (logs:* on *).
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Execution role of ${props.functionName}`,
      inlinePolicies: {
        Logs: new iam.PolicyDocument({
          statements: [
            new iam.PolicyStatement({
              actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
              resources: [this.logGroup.logGroupArn, `${this.logGroup.logGroupArn}:log-stream:*`],
            }),
          ],
        }),
      },
    });

    const sourceDir = path.join(WORKSPACE_ROOT, 'lambdas', props.crateDir);
    this.function = new lambda.Function(this, 'Function', {
      functionName: props.functionName,
      description: props.description,
      runtime: lambda.Runtime.PROVIDED_AL2023,
      architecture: lambda.Architecture.X86_64,
      handler: 'bootstrap',
      code: lambda.Code.fromAsset(sourceDir, {
        // The hash of the built binary: a Rust change redeploys the function, nothing else does.
        assetHashType: AssetHashType.OUTPUT,
        bundling: {
          // Never used: local bundling always succeeds or fails with a clear error.
          image: DockerImage.fromRegistry('public.ecr.aws/docker/library/busybox'),
          // Part of CDK's bundling cache key (the local bundler is not): without it every
          // binary of one crate would get the asset bundled first. Never read.
          environment: { EVENTFABRIC_BINARY: props.binary },
          local: {
            tryBundle(outputDir: string): boolean {
              const bootstrap = path.join(buildWorkspaceOnce(), props.binary, 'bootstrap');
              if (!fs.existsSync(bootstrap)) {
                throw new Error(`cargo lambda build did not produce ${bootstrap}`);
              }
              fs.copyFileSync(bootstrap, path.join(outputDir, 'bootstrap'));
              fs.chmodSync(path.join(outputDir, 'bootstrap'), 0o755);
              return true;
            },
          },
        },
      }),
      memorySize: props.memoryMb,
      timeout: props.timeout,
      environment: { RUST_LOG: 'info', ...props.environment },
      tracing: lambda.Tracing.ACTIVE,
      loggingFormat: lambda.LoggingFormat.JSON,
      logGroup: this.logGroup,
      role: this.role,
    });

    this.alias = new lambda.Alias(this, 'Live', {
      aliasName: LIVE_ALIAS,
      version: this.function.currentVersion,
      description: 'What every trigger invokes; CodeDeploy shifts it to each new version',
    });
    const shift: TrafficShift = this.node.tryGetContext(TRAFFIC_SHIFT_CONTEXT) ?? { kind: 'all-at-once' };
    this.deployment = new codedeploy.LambdaDeploymentGroup(this, 'Deployment', {
      application: codeDeployApplication(this),
      alias: this.alias,
      deploymentConfig: deploymentConfig(this, shift),
      alarms: this.rollbackAlarms(props),
      autoRollback: { failedDeployment: true, stoppedDeployment: true, deploymentInAlarm: true },
    });

    // Which binary runs here (several functions may share one): for operators, and for the
    // synth summary's check that functions sharing an asset share a binary.
    Tags.of(this.function).add('eventfabric:binary', props.binary);

    const logGroupId = Stack.of(this).getLogicalId(this.logGroup.node.defaultChild as CfnResource);
    Validations.of(this.role).acknowledge(
      {
        id: `AwsSolutions-IAM5[Resource::<${logGroupId}.Arn>:log-stream:*]`,
        reason: "Log streams are created at run time with generated names; the wildcard stays inside this function's own log group.",
      },
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason: 'xray:PutTraceSegments and xray:PutTelemetryRecords (active tracing) support no resource-level permissions.',
      },
    );
    Validations.of(this.deployment).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSCodeDeployRoleForLambdaLimited]',
      reason:
        "CodeDeploy's own service role for Lambda: it may update aliases and invoke hook functions of the deployment, and read its alarms; AWS maintains it as the API grows.",
    });
  }

  /** Another alarm that rolls a deployment of this function back (a system's business alarm). */
  addRollbackAlarm(alarm: cloudwatch.IAlarm): void {
    this.deployment.addAlarm(alarm);
  }

  /** The alias's error rate and p99 latency: either, during a deployment, rolls it back. */
  private rollbackAlarms(props: RustFunctionProps): cloudwatch.IAlarm[] {
    const minute = Duration.minutes(1);
    const errorRate = new cloudwatch.MathExpression({
      expression: '100 * errors / MAX([invocations, 1])',
      usingMetrics: {
        errors: this.alias.metricErrors({ period: minute, statistic: cloudwatch.Stats.SUM }),
        invocations: this.alias.metricInvocations({ period: minute, statistic: cloudwatch.Stats.SUM }),
      },
      label: 'Error rate of the live alias (%)',
      period: minute,
    });
    const errors = errorRate.createAlarm(this, 'RollbackErrorsAlarm', {
      alarmName: `${props.functionName}-rollback-errors`,
      alarmDescription: `More than ${ROLLBACK_ERROR_RATE_PERCENT} % of ${props.functionName}'s invocations through its live alias failed in a minute: a deployment in progress rolls back.`,
      threshold: ROLLBACK_ERROR_RATE_PERCENT,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    const latencyMs = Math.round(props.timeout.toMilliseconds() * ROLLBACK_LATENCY_SHARE);
    const latency = this.alias
      .metricDuration({ period: minute, statistic: cloudwatch.Stats.p(99) })
      .createAlarm(this, 'RollbackLatencyAlarm', {
        alarmName: `${props.functionName}-rollback-latency`,
        alarmDescription: `p99 duration of ${props.functionName} through its live alias above ${latencyMs} ms (${ROLLBACK_LATENCY_SHARE * 100} % of its timeout) for 2 minutes: a deployment in progress rolls back.`,
        threshold: latencyMs,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 2,
        datapointsToAlarm: 2,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    return [errors, latency];
  }
}

/** One CodeDeploy application per stack for its functions' deployment groups. */
function codeDeployApplication(scope: Construct): codedeploy.LambdaApplication {
  const stack = Stack.of(scope);
  const id = 'FunctionDeployments';
  return (
    (stack.node.tryFindChild(id) as codedeploy.LambdaApplication | undefined) ??
    new codedeploy.LambdaApplication(stack, id, {})
  );
}

/**
 * CodeDeploy's config for a traffic shift: a predefined one where it exists, else one custom
 * config per stack and shift.
 */
function deploymentConfig(scope: Construct, shift: TrafficShift): codedeploy.ILambdaDeploymentConfig {
  if (shift.kind === 'all-at-once') return codedeploy.LambdaDeploymentConfig.ALL_AT_ONCE;
  const minutes = shift.kind === 'canary' ? shift.minutes : shift.everyMinutes;
  if (!Number.isInteger(shift.percent) || shift.percent < 1 || shift.percent > 99) {
    throw new Error(`delivery.trafficShift: percent must be a whole number from 1 to 99, not ${shift.percent}`);
  }
  if (!Number.isInteger(minutes) || minutes < 1) {
    throw new Error(`delivery.trafficShift: minutes must be a whole number of at least 1, not ${minutes}`);
  }
  const predefined: Record<string, codedeploy.ILambdaDeploymentConfig> = {
    'canary-10-5': codedeploy.LambdaDeploymentConfig.CANARY_10PERCENT_5MINUTES,
    'canary-10-10': codedeploy.LambdaDeploymentConfig.CANARY_10PERCENT_10MINUTES,
    'canary-10-15': codedeploy.LambdaDeploymentConfig.CANARY_10PERCENT_15MINUTES,
    'canary-10-30': codedeploy.LambdaDeploymentConfig.CANARY_10PERCENT_30MINUTES,
    'linear-10-1': codedeploy.LambdaDeploymentConfig.LINEAR_10PERCENT_EVERY_1MINUTE,
    'linear-10-2': codedeploy.LambdaDeploymentConfig.LINEAR_10PERCENT_EVERY_2MINUTES,
    'linear-10-3': codedeploy.LambdaDeploymentConfig.LINEAR_10PERCENT_EVERY_3MINUTES,
    'linear-10-10': codedeploy.LambdaDeploymentConfig.LINEAR_10PERCENT_EVERY_10MINUTES,
  };
  const key =
    shift.kind === 'canary' ? `canary-${shift.percent}-${shift.minutes}` : `linear-${shift.percent}-${shift.everyMinutes}`;
  if (predefined[key]) return predefined[key];
  const stack = Stack.of(scope);
  const id = `TrafficShift${key.replace(/-/g, '')}`;
  const existing = stack.node.tryFindChild(id) as codedeploy.LambdaDeploymentConfig | undefined;
  if (existing) return existing;
  const interval = Duration.minutes(minutes);
  return new codedeploy.LambdaDeploymentConfig(stack, id, {
    trafficRouting:
      shift.kind === 'canary'
        ? new codedeploy.TimeBasedCanaryTrafficRouting({ interval, percentage: shift.percent })
        : new codedeploy.TimeBasedLinearTrafficRouting({ interval, percentage: shift.percent }),
  });
}
