import { Duration, type RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import type { EnvName } from '../config';
import { keepChildLogicalIds } from '../logical-ids';
import { resourceName } from '../naming';
import { alarmToTopic } from '../constructs/alarms';
import { keyUseThroughServices } from '../constructs/policies';
import { RustFunction } from '../constructs/rust-function';

export interface SigningSecretRotationProps {
  readonly envName: EnvName;
  /** The secret to rotate, by ARN (it lives in the stateful stack). */
  readonly secretArn: string;
  readonly key: kms.IKey;
  readonly alarmTopic: sns.ITopic;
  /** Days between rotations. */
  readonly everyDays: number;
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
  /** Names the function (`eventfabric-<env>-<name>`) and its alarm. Default `signing-secret-rotation`. */
  readonly name?: string;
  /** What the secret is, for descriptions. Default: the session token signing secret. */
  readonly secretDescription?: string;
}

/**
 * The signing secret's rotation: the `secret-rotation` function Secrets Manager calls for each
 * step, on a schedule, with an alarm on its errors. With the functions, not next to the secret:
 * functions are stateless, and the schedule names the function. Permissions are written on the
 * role, on the secret's ARN (a grant would put the role into the stateful stack's key policy).
 *
 * Its resources predate it (the stateless stack built them directly), so it keeps their
 * logical ids ({@link keepChildLogicalIds}).
 */
export class SigningSecretRotation extends Construct {
  readonly function: RustFunction;

  constructor(scope: Construct, id: string, props: SigningSecretRotationProps) {
    super(scope, id);
    keepChildLogicalIds(this);
    const name = (...parts: string[]) => resourceName(props.envName, ...parts);
    const { secretArn } = props;
    const rotationName = props.name ?? 'signing-secret-rotation';
    const what = props.secretDescription ?? 'the session token signing secret';
    const rotation = new RustFunction(this, 'SigningSecretRotation', {
      binary: 'secret-rotation',
      crateDir: 'secret_rotation',
      functionName: name(rotationName),
      description: `Secrets Manager rotation of ${what} (new random value; the old one stays valid as AWSPREVIOUS)`,
      memoryMb: 128,
      timeout: Duration.seconds(30),
      logRetention: props.logRetention,
      removalPolicy: props.removalPolicy,
    });
    this.function = rotation;
    rotation.function.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'RotateTheSigningSecret',
        actions: [
          'secretsmanager:DescribeSecret',
          'secretsmanager:GetSecretValue',
          'secretsmanager:PutSecretValue',
          'secretsmanager:UpdateSecretVersionStage',
        ],
        resources: [secretArn],
      }),
    );
    rotation.function.addToRolePolicy(
      keyUseThroughServices('UsePlatformKeyThroughSecrets', props.key, Stack.of(this).region, ['secretsmanager']),
    );
    const random = new iam.Policy(this, 'SigningSecretRotationRandom', {
      statements: [new iam.PolicyStatement({ actions: ['secretsmanager:GetRandomPassword'], resources: ['*'] })],
      roles: [rotation.role],
    });
    Validations.of(random).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'secretsmanager:GetRandomPassword acts on no resource and supports no resource-level permission; it only returns random bytes.',
    });
    // Secrets Manager invokes the live alias (CodeDeploy shifts it).
    rotation.alias.addPermission('InvokedBySecretsManager', {
      principal: new iam.ServicePrincipal('secretsmanager.amazonaws.com'),
      sourceArn: secretArn,
    });
    Validations.of(rotation.function).acknowledge({
      id: 'Serverless-LambdaDLQ',
      reason: 'Invoked synchronously by Secrets Manager, which retries a failed step and marks the rotation failed; the errors alarm reports it.',
    });
    const schedule = new secretsmanager.CfnRotationSchedule(this, 'SigningSecretRotationSchedule', {
      secretId: secretArn,
      rotationLambdaArn: rotation.alias.functionArn,
      rotationRules: { scheduleExpression: `rate(${props.everyDays} days)` },
      rotateImmediatelyOnUpdate: false,
    });
    schedule.node.addDependency(rotation.alias.permissionsNode.findChild('InvokedBySecretsManager'));
    // A failed rotation leaves the old value current (nothing breaks), but it must not go unseen.
    alarmToTopic(
      this,
      'SigningSecretRotationErrorsAlarm',
      rotation.function.metricErrors({ period: Duration.hours(1), statistic: cloudwatch.Stats.SUM }),
      props.alarmTopic,
      {
        alarmName: name(`${rotationName}-errors`),
        alarmDescription:
          `A step of the rotation of ${what} failed: the secret keeps its current value. See the function logs, fix, then rotate again (aws secretsmanager rotate-secret).`,
        threshold: 1,
      },
    );
  }
}
