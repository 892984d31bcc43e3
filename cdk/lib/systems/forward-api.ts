import { Duration, type RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import type { EnvConfig, EnvName } from '../config';
import { keepChildLogicalIds } from '../logical-ids';
import { METRICS_NAMESPACE, NAMES, resourceName } from '../naming';
import { type RegistryManifest, forwardedTopics, interfacePattern } from '../registry';
import { alarmToTopic, emfCounter } from '../constructs/alarms';
import { BusRuleToFirehose } from '../constructs/bus-rule-to-firehose';
import { BusRuleToQueue } from '../constructs/bus-rule-to-queue';
import { loggedHttpApi } from '../constructs/http-api';
import { DEFAULT_RULE_TARGET_DELIVERY, type RuleTargetDelivery } from '../constructs/defaults';
import { ForwardingKillSwitch } from './forwarding-kill-switch';
import { keyUseThroughServices } from '../constructs/policies';
import { RustFunction } from '../constructs/rust-function';

export interface ForwardApiProps {
  readonly envName: EnvName;
  readonly registry: RegistryManifest;
  /** Memory, timeout, quota, alarm threshold (per environment). */
  readonly settings: EnvConfig['forwardFunction'];
  /** Throttling and CORS of the browser-facing API (per environment). */
  readonly edgeApi: EnvConfig['edgeApi'];
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
  /** From the platform. */
  readonly key: kms.IKey;
  readonly alarmTopic: sns.ITopic;
  readonly sessionBus: events.IEventBus;
  readonly analyticsBus: events.IEventBus;
  /** From `ForwardingState`. */
  readonly sessionSecret: secretsmanager.ISecret;
  readonly redactionSecret: secretsmanager.ISecret;
  readonly table: dynamodb.ITable;
  readonly sessionConsumer: {
    readonly queueArn: string;
    readonly deliveryDeadLetterQueueArn: string;
    /** Only these tenants' events (`detail.tenantId`); none means all. */
    readonly tenantIds?: string[];
  };
  /** Absent when no topic is forwarded to the analytics bus. */
  readonly analyticsArchive?: { readonly deliveryStreamArn: string; readonly deliveryDeadLetterQueueArn: string };
  readonly delivery?: RuleTargetDelivery;
  /** The kill switch rule's DLQ (`ForwardingState`). */
  readonly killSwitchDeadLetterQueueArn: string;
}

/**
 * Interface event forwarding, stateless half: `POST /api/events/forward` on the edge HTTP API,
 * the `forward-api` function with exactly the permissions it uses, its alarms, and the rules
 * that route the session bus to the consumer queue and the analytics bus to the archive.
 *
 * Its resources predate it (the stateless stack built them directly), so it keeps their
 * logical ids ({@link keepChildLogicalIds}).
 */
export class ForwardApi extends Construct {
  readonly function: RustFunction;
  readonly api: apigw.HttpApi;
  readonly killSwitch: ForwardingKillSwitch;

  constructor(scope: Construct, id: string, props: ForwardApiProps) {
    super(scope, id);
    keepChildLogicalIds(this);
    const { settings, registry } = props;
    const name = (...parts: string[]) => resourceName(props.envName, ...parts);
    const region = Stack.of(this).region;
    // The function publishes each topic to its registry `bus`: it gets the name of, and
    // events:PutEvents on, the analytics bus only if some forwarded topic goes there.
    const usesAnalytics = forwardedTopics(registry, 'analytics').length > 0;

    this.function = new RustFunction(this, 'ForwardFunction', {
      binary: 'forward-api',
      crateDir: 'forward_api',
      functionName: name('forward-api'),
      description: 'POST /api/events/forward: validate browser session events and put them on the session bus',
      memoryMb: settings.memoryMb,
      timeout: Duration.seconds(settings.timeoutSeconds),
      environment: {
        SESSION_BUS_NAME: props.sessionBus.eventBusName,
        ...(usesAnalytics ? { ANALYTICS_BUS_NAME: props.analyticsBus.eventBusName } : {}),
        // The ARN only: the function reads the value from Secrets Manager at start-up.
        SESSION_SECRET_ARN: props.sessionSecret.secretArn,
        REDACTION_SECRET_ARN: props.redactionSecret.secretArn,
        STATE_TABLE_NAME: props.table.tableName,
        QUOTA_EVENTS_PER_MINUTE: String(settings.quotaEventsPerMinute),
        // A claim left pending by an invocation that died is taken over once this has passed.
        CLAIM_LEASE_SECONDS: String(settings.timeoutSeconds + 5),
        METRICS_NAMESPACE: METRICS_NAMESPACE,
      },
      logRetention: props.logRetention,
      removalPolicy: props.removalPolicy,
    });
    const fn = this.function.function;
    // events:PutEvents on the bus ARNs it publishes to, nothing else.
    props.sessionBus.grantPutEventsTo(fn);
    if (usesAnalytics) {
      props.analyticsBus.grantPutEventsTo(fn);
    }
    // The two secrets and the item writes the quota and idempotency need, on their ARNs;
    // the platform key only through those two services.
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'ReadSessionAndRedactionSecrets',
        actions: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
        resources: [props.sessionSecret.secretArn, props.redactionSecret.secretArn],
      }),
    );
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'WriteForwardState',
        actions: ['dynamodb:UpdateItem', 'dynamodb:PutItem', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem'],
        resources: [props.table.tableArn],
      }),
    );
    fn.addToRolePolicy(
      keyUseThroughServices('UsePlatformKeyThroughSecretsAndState', props.key, region, ['secretsmanager', 'dynamodb']),
    );

    // Alarms on the function's EMF counters (sum over 5 minutes).
    const counter = (metricName: string) => emfCounter('forward-api', metricName);
    // Events every check accepted but the bus did not take: the client was told (publish_failed)
    // and may retry, but a steady rate means the bus or the permissions are broken.
    const forwardFailures = alarmToTopic(this, 'ForwardFailuresAlarm', counter('ForwardFailures'), props.alarmTopic, {
      alarmName: name('forward-failures'),
      alarmDescription:
        'Valid interface events the session/analytics bus refused after retries (reported to clients as publish_failed)',
      threshold: settings.forwardFailuresAlarmThreshold,
    });
    // A new version that cannot publish rolls back (CodeDeploy), whatever its error rate.
    this.function.addRollbackAlarm(forwardFailures);
    // The quota/idempotency table failing: the function fails open (no quota, no dedupe), which
    // nothing else would show.
    alarmToTopic(this, 'StateStoreErrorsAlarm', counter('StateStoreErrors'), props.alarmTopic, {
      alarmName: name('forward-state-errors'),
      alarmDescription:
        'The forward state table (quota, idempotency) is failing: requests go through without quota or deduplication. See the function logs for the operation.',
      threshold: 1,
    });
    Validations.of(fn).acknowledge({
      id: 'Serverless-LambdaDLQ',
      reason: 'Invoked synchronously by API Gateway only; the caller gets the error, there is no async event to dead-letter.',
    });

    this.killSwitch = new ForwardingKillSwitch(this, 'KillSwitch', {
      envName: props.envName,
      forwardFunction: this.function,
      settings: settings.killSwitch,
      alarmTopic: props.alarmTopic,
      deadLetterQueueArn: props.killSwitchDeadLetterQueueArn,
      delivery: props.delivery ?? DEFAULT_RULE_TARGET_DELIVERY,
      logRetention: props.logRetention,
      removalPolicy: props.removalPolicy,
    });

    this.api = this.edgeApi(props, this.function.alias);

    new BusRuleToQueue(this, 'SessionConsumerRoute', {
      delivery: props.delivery,
      bus: props.sessionBus,
      ruleName: name(NAMES.sessionConsumer),
      description: 'Every forwarded interface topic of the session bus to the session consumer queue',
      eventPattern: interfacePattern(registry, 'session'),
      tenantIds: props.sessionConsumer.tenantIds,
      queueArn: props.sessionConsumer.queueArn,
      deliveryDeadLetterQueueArn: props.sessionConsumer.deliveryDeadLetterQueueArn,
    });
    if (props.analyticsArchive) {
      new BusRuleToFirehose(this, 'AnalyticsArchiveRoute', {
        delivery: props.delivery,
        bus: props.analyticsBus,
        ruleName: name(NAMES.analyticsArchive),
        description: 'Every forwarded interface topic of the analytics bus to the Parquet archive',
        eventPattern: interfacePattern(registry, 'analytics'),
        deliveryStreamArn: props.analyticsArchive.deliveryStreamArn,
        deliveryDeadLetterQueueArn: props.analyticsArchive.deliveryDeadLetterQueueArn,
      });
    }
  }

  /** The browser-facing HTTP API: throttled stage, JSON access logs, CORS, the one route. */
  private edgeApi(props: ForwardApiProps, fn: lambda.IFunction): apigw.HttpApi {
    const name = (...parts: string[]) => resourceName(props.envName, ...parts);
    const api = loggedHttpApi(this, 'EdgeApi', {
      apiName: name('edge'),
      description: 'Browser-facing ingest of interface events',
      corsPreflight: {
        allowOrigins: props.edgeApi.corsOrigins,
        allowMethods: [apigw.CorsHttpMethod.POST],
        allowHeaders: ['content-type', 'authorization'],
        maxAge: Duration.hours(1),
      },
      throttle: { rateLimit: props.edgeApi.throttleRatePerSec, burstLimit: props.edgeApi.throttleBurst },
      logRetention: props.logRetention,
      removalPolicy: props.removalPolicy,
    });
    const routes = api.addRoutes({
      path: '/api/events/forward',
      methods: [apigw.HttpMethod.POST],
      integration: new HttpLambdaIntegration('ForwardIntegration', fn, {
        payloadFormatVersion: apigw.PayloadFormatVersion.VERSION_2_0,
      }),
    });
    for (const route of routes) {
      Validations.of(route).acknowledge({
        id: 'AwsSolutions-APIG4',
        reason:
          'Authorized inside the function: every request needs an HS256 session token bound to its sessionId ' +
          '(401/403 before any event is read). A Lambda authorizer would add a second cold start and invocation per request for the same check.',
      });
    }
    return api;
  }
}
