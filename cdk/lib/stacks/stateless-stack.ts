import { Duration, Stack, type StackProps, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import type { EnvConfig } from '../config';
import { BusRuleToFirehose } from '../constructs/bus-rule-to-firehose';
import { BusRuleToQueue } from '../constructs/bus-rule-to-queue';
import { RustFunction } from '../constructs/rust-function';
import { resourceName } from '../naming';
import { forwardedTopics, interfacePattern, type RegistryManifest } from '../registry';
import { ANALYTICS_ARCHIVE, type StatefulStack } from './stateful-stack';

export interface StatelessStackProps extends StackProps {
  readonly config: EnvConfig;
  readonly stateful: StatefulStack;
  readonly registry: RegistryManifest;
}

/** The CloudWatch namespace of the functions' EMF metrics. */
export const METRICS_NAMESPACE = 'eventfabric';

/** What can be replaced at will: functions, rules and APIs. */
export class StatelessStack extends Stack {
  readonly forwardFunction: RustFunction;
  /** Rotates the session token signing secret on a schedule (`secret-rotation`). */
  readonly rotationFunction: RustFunction;
  readonly edgeApi: apigw.HttpApi;

  constructor(scope: Construct, id: string, props: StatelessStackProps) {
    super(scope, id, props);
    const { config, stateful, registry } = props;
    const name = (...parts: string[]) => resourceName(config.name, ...parts);
    // The function publishes each topic to its registry `bus`: it gets the name of, and
    // events:PutEvents on, the analytics bus only if some forwarded topic goes there.
    const usesAnalytics = forwardedTopics(registry, 'analytics').length > 0;

    this.forwardFunction = new RustFunction(this, 'ForwardFunction', {
      binary: 'forward-api',
      crateDir: 'forward_api',
      functionName: name('forward-api'),
      description: 'POST /api/events/forward: validate browser session events and put them on the session bus',
      memoryMb: config.forwardFunction.memoryMb,
      timeout: Duration.seconds(config.forwardFunction.timeoutSeconds),
      environment: {
        SESSION_BUS_NAME: stateful.sessionBus.eventBusName,
        ...(usesAnalytics ? { ANALYTICS_BUS_NAME: stateful.analyticsBus.eventBusName } : {}),
        // The ARN only: the function reads the value from Secrets Manager at start-up.
        SESSION_SECRET_ARN: stateful.sessionSecret.secretArn,
        REDACTION_SECRET_ARN: stateful.redactionSecret.secretArn,
        STATE_TABLE_NAME: stateful.forwardState.tableName,
        QUOTA_EVENTS_PER_MINUTE: String(config.forwardFunction.quotaEventsPerMinute),
        // A claim left pending by an invocation that died is taken over once this has passed.
        CLAIM_LEASE_SECONDS: String(config.forwardFunction.timeoutSeconds + 5),
        METRICS_NAMESPACE: METRICS_NAMESPACE,
      },
      logRetention: config.logRetention,
      removalPolicy: config.removalPolicy,
    });
    // events:PutEvents on the bus ARNs it publishes to, nothing else.
    stateful.sessionBus.grantPutEventsTo(this.forwardFunction.function);
    if (usesAnalytics) {
      stateful.analyticsBus.grantPutEventsTo(this.forwardFunction.function);
    }
    // The two secrets and the item writes the quota and idempotency need, on their ARNs;
    // the platform key only through those two services. Written on the role: the grant helpers
    // would put this role into the key policy of the stateful stack, a dependency cycle.
    const fn = this.forwardFunction.function;
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'ReadSessionAndRedactionSecrets',
        actions: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
        resources: [stateful.sessionSecret.secretArn, stateful.redactionSecret.secretArn],
      }),
    );
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'WriteForwardState',
        actions: ['dynamodb:UpdateItem', 'dynamodb:PutItem', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem'],
        resources: [stateful.forwardState.tableArn],
      }),
    );
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'UsePlatformKeyThroughSecretsAndState',
        actions: ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey', 'kms:DescribeKey'],
        resources: [stateful.key.keyArn],
        conditions: {
          StringEquals: {
            'kms:ViaService': [`secretsmanager.${this.region}.amazonaws.com`, `dynamodb.${this.region}.amazonaws.com`],
          },
        },
      }),
    );

    // Alarms on the function's EMF counters (sum over 5 minutes), to the alarm topic.
    const alarmOn = (metricName: string, id: string, alarmName: string, threshold: number, description: string) => {
      const alarm = new cloudwatch.Metric({
        namespace: METRICS_NAMESPACE,
        metricName,
        dimensionsMap: { function: 'forward-api' },
        statistic: cloudwatch.Stats.SUM,
        period: Duration.minutes(5),
      }).createAlarm(this, id, {
        alarmName: name(alarmName),
        alarmDescription: description,
        threshold,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      alarm.addAlarmAction(new actions.SnsAction(stateful.alarmTopic));
    };
    // Events every check accepted but the bus did not take: the client was told (publish_failed)
    // and may retry, but a steady rate means the bus or the permissions are broken.
    alarmOn(
      'ForwardFailures',
      'ForwardFailuresAlarm',
      'forward-failures',
      config.forwardFunction.forwardFailuresAlarmThreshold,
      'Valid interface events the session/analytics bus refused after retries (reported to clients as publish_failed)',
    );
    // The quota/idempotency table failing: the function fails open (no quota, no dedupe), which
    // nothing else would show.
    alarmOn(
      'StateStoreErrors',
      'StateStoreErrorsAlarm',
      'forward-state-errors',
      1,
      'The forward state table (quota, idempotency) is failing: requests go through without quota or deduplication. See the function logs for the operation.',
    );
    Validations.of(this.forwardFunction.function).acknowledge({
      id: 'Serverless-LambdaDLQ',
      reason: 'Invoked synchronously by API Gateway only; the caller gets the error, there is no async event to dead-letter.',
    });

    this.rotationFunction = this.rotateSigningSecret(config, stateful);

    const accessLogs = new logs.LogGroup(this, 'EdgeApiAccessLogs', {
      logGroupName: `/aws/apigateway/${name('edge')}`,
      retention: config.logRetention,
      removalPolicy: config.removalPolicy,
    });
    this.edgeApi = new apigw.HttpApi(this, 'EdgeApi', {
      apiName: name('edge'),
      description: 'Browser-facing ingest of interface events',
      createDefaultStage: false,
      corsPreflight: {
        allowOrigins: config.edgeApi.corsOrigins,
        allowMethods: [apigw.CorsHttpMethod.POST],
        allowHeaders: ['content-type', 'authorization'],
        maxAge: Duration.hours(1),
      },
    });
    new apigw.HttpStage(this, 'EdgeApiStage', {
      httpApi: this.edgeApi,
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit: config.edgeApi.throttleRatePerSec, burstLimit: config.edgeApi.throttleBurst },
      accessLogSettings: {
        destination: new apigw.LogGroupLogDestination(accessLogs),
        format: AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            ip: '$context.identity.sourceIp',
            requestTime: '$context.requestTimeEpoch',
            routeKey: '$context.routeKey',
            status: '$context.status',
            responseLength: '$context.responseLength',
            latencyMs: '$context.responseLatency',
            integrationError: '$context.integrationErrorMessage',
          }),
        ),
      },
    });
    const forwardRoute = this.edgeApi.addRoutes({
      path: '/api/events/forward',
      methods: [apigw.HttpMethod.POST],
      integration: new HttpLambdaIntegration('ForwardIntegration', this.forwardFunction.function, {
        payloadFormatVersion: apigw.PayloadFormatVersion.VERSION_2_0,
      }),
    });
    for (const route of forwardRoute) {
      Validations.of(route).acknowledge({
        id: 'AwsSolutions-APIG4',
        reason:
          'Authorized inside the function: every request needs an HS256 session token bound to its sessionId ' +
          '(401/403 before any event is read). A Lambda authorizer would add a second cold start and invocation per request for the same check.',
      });
    }

    const consumer = stateful.sessionConsumer;
    new BusRuleToQueue(this, 'SessionConsumerRoute', {
      config,
      bus: stateful.sessionBus,
      ruleName: consumer.ruleName,
      description: 'Every forwarded interface topic of the session bus to the session consumer queue',
      eventPattern: interfacePattern(registry, 'session'),
      tenantIds: config.sessionConsumerTenantIds,
      queueArn: consumer.queue.queueArn,
      deliveryDeadLetterQueueArn: consumer.deliveryDeadLetterQueue.queue.queueArn,
    });

    const archive = stateful.analyticsArchive;
    const archiveDlq = stateful.analyticsDeliveryDlq;
    if (archive && archiveDlq) {
      new BusRuleToFirehose(this, 'AnalyticsArchiveRoute', {
        config,
        bus: stateful.analyticsBus,
        ruleName: name(ANALYTICS_ARCHIVE),
        description: 'Every forwarded interface topic of the analytics bus to the Parquet archive',
        eventPattern: interfacePattern(registry, 'analytics'),
        deliveryStreamArn: archive.deliveryStream.attrArn,
        deliveryDeadLetterQueueArn: archiveDlq.queue.queueArn,
      });
    }
  }

  /**
   * The signing secret's rotation: a Rust function Secrets Manager calls for each step, on a
   * schedule. Here and not next to the secret: functions are stateless, and the schedule names
   * the function. Permissions are written on the role, on the secret's ARN, for the same reason
   * as the forward function's (no grant into the stateful stack's key policy).
   */
  private rotateSigningSecret(config: EnvConfig, stateful: StatefulStack): RustFunction {
    const name = (...parts: string[]) => resourceName(config.name, ...parts);
    const rotation = new RustFunction(this, 'SigningSecretRotation', {
      binary: 'secret-rotation',
      crateDir: 'secret_rotation',
      functionName: name('signing-secret-rotation'),
      description: 'Secrets Manager rotation of the session token signing secret (new random value; the old one stays valid as AWSPREVIOUS)',
      memoryMb: 128,
      timeout: Duration.seconds(30),
      logRetention: config.logRetention,
      removalPolicy: config.removalPolicy,
    });
    const secretArn = stateful.sessionSecret.secretArn;
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
      new iam.PolicyStatement({
        sid: 'UsePlatformKeyThroughSecrets',
        actions: ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey', 'kms:DescribeKey'],
        resources: [stateful.key.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `secretsmanager.${this.region}.amazonaws.com` } },
      }),
    );
    const random = new iam.Policy(this, 'SigningSecretRotationRandom', {
      statements: [new iam.PolicyStatement({ actions: ['secretsmanager:GetRandomPassword'], resources: ['*'] })],
      roles: [rotation.role],
    });
    Validations.of(random).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'secretsmanager:GetRandomPassword acts on no resource and supports no resource-level permission; it only returns random bytes.',
    });
    rotation.function.addPermission('InvokedBySecretsManager', {
      principal: new iam.ServicePrincipal('secretsmanager.amazonaws.com'),
      sourceArn: secretArn,
    });
    Validations.of(rotation.function).acknowledge({
      id: 'Serverless-LambdaDLQ',
      reason: 'Invoked synchronously by Secrets Manager, which retries a failed step and marks the rotation failed; the errors alarm reports it.',
    });
    const schedule = new secretsmanager.CfnRotationSchedule(this, 'SigningSecretRotationSchedule', {
      secretId: secretArn,
      rotationLambdaArn: rotation.function.functionArn,
      rotationRules: { scheduleExpression: `rate(${config.forwardFunction.signingSecretRotationDays} days)` },
      rotateImmediatelyOnUpdate: false,
    });
    schedule.node.addDependency(rotation.function.permissionsNode.findChild('InvokedBySecretsManager'));
    // A failed rotation leaves the old value current (nothing breaks), but it must not go unseen.
    const alarm = rotation.function
      .metricErrors({ period: Duration.hours(1), statistic: cloudwatch.Stats.SUM })
      .createAlarm(this, 'SigningSecretRotationErrorsAlarm', {
        alarmName: name('signing-secret-rotation-errors'),
        alarmDescription:
          'A step of the session signing secret rotation failed: the secret keeps its current value. See the function logs, fix, then rotate again (aws secretsmanager rotate-secret).',
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    alarm.addAlarmAction(new actions.SnsAction(stateful.alarmTopic));
    return rotation;
  }
}
