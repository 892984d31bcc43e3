import * as fs from 'node:fs';
import * as path from 'node:path';
import { AssetHashType, type CfnResource, DockerImage, Duration, type RemovalPolicy, Stack, Tags, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { WORKSPACE_ROOT, buildWorkspaceOnce, registerBinary } from './rust-build';

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
  }
}
