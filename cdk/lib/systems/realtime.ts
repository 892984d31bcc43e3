import { Duration, type RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sources from 'aws-cdk-lib/aws-lambda-event-sources';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { EnvName, RealtimeConfig } from '../config';
import { METRICS_NAMESPACE, NAMES, resourceName } from '../naming';
import { type RegistryManifest, registryTopic, topicPattern, topicsPattern } from '../registry';
import { alarmToTopic } from '../constructs/alarms';
import { BusRuleToQueue } from '../constructs/bus-rule-to-queue';
import { DEFAULT_RULE_TARGET_DELIVERY, type RuleTargetDelivery } from '../constructs/defaults';
import { keyUseThroughServices, putEventsConditions } from '../constructs/policies';
import { RustFunction } from '../constructs/rust-function';
import { TokenWebSocketApi } from '../constructs/websocket-api';
import { keepChildLogicalIds } from '../logical-ids';
import { REALTIME_RULE_TARGETS, type RealtimeRuleTarget } from './realtime-state';
import { SigningSecretRotation } from './secret-rotation';

/** The audience connect tokens must name (`aud`); the issuer signs with the realtime token secret. */
export const CONNECT_TOKEN_AUDIENCE = 'eventfabric:realtime.connect';

/**
 * What each rule-invoked function handles and publishes, by registry topic. The rules' patterns
 * come from the registry; the Rust side (`realtime::domain::Domain::topics`) must agree, which
 * the contract tests check against the synthesized rules.
 */
export const REALTIME_ROUTES: Record<RealtimeRuleTarget, { readonly handles: string[]; readonly publishes: string[]; readonly description: string }> = {
  studio: {
    handles: ['studio.content.generated', 'studio.job.progress'],
    publishes: ['realtime.notification', 'realtime.job.progress'],
    description: 'Studio: content generated → library item, usage count, notification; job progress → progress push',
  },
  brand: {
    handles: ['brand.profile.updated'],
    publishes: ['brand.audit.requested', 'brand.competitor.refresh_requested'],
    description: 'Brand: profile updated → audit requested (name, address, phone), competitor refresh (market area)',
  },
  research: {
    handles: ['research.query.completed'],
    publishes: ['realtime.notification'],
    description: 'Research: query completed → knowledge item and notification',
  },
  market: {
    handles: ['market.trend.detected'],
    publishes: ['realtime.notification'],
    description: 'Market: trend detected → a notification to each affected user',
  },
  account: {
    handles: ['account.usage.updated'],
    publishes: ['realtime.notification'],
    description: 'Account: usage near the plan limit → one usage warning per threshold and period',
  },
  notifier: {
    handles: ['realtime.notification', 'realtime.job.progress'],
    publishes: [],
    description: 'Realtime notifier: notifications and job progress → every WebSocket connection of the user',
  },
};

/** Brand follow-ups, routed to the brand requests queue for the brand workers. */
export const BRAND_REQUEST_TOPICS = ['brand.audit.requested', 'brand.competitor.refresh_requested'];

export interface RealtimeProps {
  readonly envName: EnvName;
  readonly registry: RegistryManifest;
  readonly settings: RealtimeConfig;
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
  readonly delivery?: RuleTargetDelivery;
  /** From the platform. */
  readonly key: kms.IKey;
  readonly alarmTopic: sns.ITopic;
  readonly appBus: events.IEventBus;
  /** From `RealtimeState`. */
  readonly appTable: dynamodb.ITable;
  readonly connectionsTable: dynamodb.ITable;
  readonly subscriptionsTable: dynamodb.ITable;
  readonly dashboardOnFailureQueueArn: string;
  readonly tokenSecretArn: string;
  /** From the ingest stream's state: the table whose stream feeds the live dashboards. */
  readonly ingestTable: { readonly tableStreamArn: string };
  readonly ruleDeadLetterQueueArns: Record<RealtimeRuleTarget, string>;
  readonly brandRequests: { readonly queueArn: string; readonly deliveryDeadLetterQueueArn: string };
}

/**
 * Realtime app events, stateless half: the five domain processors and the notifier, each on
 * its app-bus rule (patterns from the registry; retries, maximum age, and one alarmed DLQ for
 * undeliverable and failed events); the WebSocket API (`$connect` behind the token authorizer,
 * `$disconnect`, `$default`) on a throttled stage with access logs that leave the query string
 * (the token) out; the rule routing brand follow-ups to their queue; the rotation of the
 * connect token secret; the live dashboards (`subscribe`/`unsubscribe` routes, and the
 * dashboard function on the ingest state table's stream); an errors alarm per function. One binary (`realtime`) for all of them:
 * `REALTIME_ROLE` picks the role.
 */
export class Realtime extends Construct {
  readonly functions: Record<RealtimeRuleTarget | 'authorizer' | 'connections' | 'dashboard', RustFunction>;
  readonly rules: Record<RealtimeRuleTarget, events.Rule>;
  readonly websocket: TokenWebSocketApi;
  readonly api: apigw.WebSocketApi;
  readonly stage: apigw.WebSocketStage;

  constructor(scope: Construct, id: string, props: RealtimeProps) {
    super(scope, id);
    const { settings, registry, key } = props;
    const name = (...parts: string[]) => resourceName(props.envName, ...parts);
    const stack = Stack.of(this);
    const region = stack.region;
    const delivery = props.delivery ?? DEFAULT_RULE_TARGET_DELIVERY;
    const fn = (role: string, description: string, memoryMb: number, timeoutSeconds: number, environment: Record<string, string>) =>
      new RustFunction(this, `${capitalize(role)}Function`, {
        binary: 'realtime',
        crateDir: 'realtime',
        functionName: name('realtime', role),
        description,
        memoryMb,
        timeout: Duration.seconds(timeoutSeconds),
        environment: { REALTIME_ROLE: role, METRICS_NAMESPACE, ...environment },
        logRetention: props.logRetention,
        removalPolicy: props.removalPolicy,
      });

    // --- the WebSocket API ---------------------------------------------------------------
    const authorizerFn = fn('authorizer', 'WebSocket $connect authorizer: a signed connect token, the user from its subject', 128, 5, {
      TOKEN_SECRET_ARN: props.tokenSecretArn,
      TOKEN_AUDIENCE: CONNECT_TOKEN_AUDIENCE,
    });
    const connectionsFn = fn('connections', 'WebSocket $connect (quota), $disconnect, $default (ping), subscribe and unsubscribe routes', 128, 5, {
      CONNECTIONS_TABLE_NAME: props.connectionsTable.tableName,
      SUBSCRIPTIONS_TABLE_NAME: props.subscriptionsTable.tableName,
      CONNECTIONS_PER_USER: String(settings.websocket.connectionsPerUser),
    });
    connectionsFn.function.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'RecordSubscriptions',
        actions: ['dynamodb:PutItem', 'dynamodb:DeleteItem'],
        resources: [props.subscriptionsTable.tableArn],
      }),
    );
    connectionsFn.function.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'ListAConnectionsSubscriptions',
        actions: ['dynamodb:Query'],
        resources: [`${props.subscriptionsTable.tableArn}/index/ByConnection`],
      }),
    );
    connectionsFn.function.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'RecordConnections',
        actions: ['dynamodb:PutItem', 'dynamodb:DeleteItem'],
        resources: [props.connectionsTable.tableArn],
      }),
    );
    connectionsFn.function.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'CountAUsersConnections',
        actions: ['dynamodb:Query'],
        resources: [`${props.connectionsTable.tableArn}/index/ByPrincipal`],
      }),
    );
    connectionsFn.function.addToRolePolicy(keyUseThroughServices('UsePlatformKeyThroughDynamoDb', key, region, ['dynamodb']));
    const websocket = new TokenWebSocketApi(this, 'WebSocket', {
      apiName: name('realtime'),
      description: 'Realtime notifications and job progress for signed-in users (connect with a token)',
      authorizer: authorizerFn,
      authorizerName: name('realtime-connect'),
      tokenSecretArn: props.tokenSecretArn,
      key,
      // Browsers cannot set headers on a WebSocket: the token comes in the query string.
      identitySource: 'route.request.querystring.token',
      connections: connectionsFn,
      // Live dashboards: {"action":"subscribe"|"unsubscribe", "entityType", "entityId"?}.
      routes: ['subscribe', 'unsubscribe'],
      throttle: { rateLimit: settings.websocket.throttleRatePerSec, burstLimit: settings.websocket.throttleBurst },
      logRetention: props.logRetention,
      removalPolicy: props.removalPolicy,
      endpointDescription: 'Connect here with ?token=<connect token> (audience eventfabric:realtime.connect, subject = the user id)',
    });
    // Built directly in this construct before TokenWebSocketApi existed: same logical ids.
    keepChildLogicalIds(websocket);
    this.websocket = websocket;
    this.api = websocket.api;
    this.stage = websocket.stage;

    // --- rule-invoked functions ------------------------------------------------------------
    const fns = { authorizer: authorizerFn, connections: connectionsFn } as Realtime['functions'];
    const rules = {} as Record<RealtimeRuleTarget, events.Rule>;
    for (const target of REALTIME_RULE_TARGETS) {
      const route = REALTIME_ROUTES[target];
      const isNotifier = target === 'notifier';
      const f = fn(
        target,
        route.description,
        isNotifier ? settings.notifier.memoryMb : settings.processor.memoryMb,
        isNotifier ? settings.notifier.timeoutSeconds : settings.processor.timeoutSeconds,
        isNotifier
          ? { CONNECTIONS_TABLE_NAME: props.connectionsTable.tableName, WEBSOCKET_ENDPOINT: this.stage.callbackUrl }
          : { APP_TABLE_NAME: props.appTable.tableName, APP_BUS_NAME: props.appBus.eventBusName },
      );
      fns[target] = f;
      const dlq = sqs.Queue.fromQueueArn(this, `${capitalize(target)}Dlq`, props.ruleDeadLetterQueueArns[target]);
      if (isNotifier) {
        f.function.addToRolePolicy(
          new iam.PolicyStatement({
            sid: 'ListAndForgetConnections',
            actions: ['dynamodb:Query', 'dynamodb:DeleteItem'],
            resources: [props.connectionsTable.tableArn, `${props.connectionsTable.tableArn}/index/ByPrincipal`],
          }),
        );
        this.websocket.grantPush(f);
      } else {
        f.function.addToRolePolicy(
          new iam.PolicyStatement({
            sid: 'ApplyEventsOnce',
            // TransactWriteItems is authorized per item: the writes and the processed-event marker.
            actions: ['dynamodb:PutItem', 'dynamodb:UpdateItem'],
            resources: [props.appTable.tableArn],
          }),
        );
        const published = route.publishes.map((t) => registryTopic(registry, t));
        for (const t of route.publishes) topicPattern(registry, t, 'app'); // refuses topics not published to the app bus
        f.function.addToRolePolicy(
          new iam.PolicyStatement({
            sid: 'PublishFollowUps',
            actions: ['events:PutEvents'],
            resources: [props.appBus.eventBusArn],
            conditions: putEventsConditions(
                published.map((t) => t.source as string),
                published.map((t) => t.detailType),
              ),
          }),
        );
      }
      f.function.addToRolePolicy(
        keyUseThroughServices('UsePlatformKeyThroughDynamoDbAndSqs', key, region, ['dynamodb', 'sqs']),
      );
      // Lambda's own retries of the asynchronous invocation, then the same queue as the rule's
      // DLQ, as an on-failure destination record (the event, the error, the attempts).
      f.alias.configureAsyncInvoke({
        retryAttempts: 2,
        maxEventAge: Duration.minutes(Math.min(delivery.maxEventAgeMinutes, 6 * 60)),
        onFailure: new destinations.SqsDestination(dlq),
      });
      Validations.of(f.function).acknowledge({
        id: 'Serverless-LambdaDLQ',
        reason:
          'Failed asynchronous invocations go to the on-failure destination (the alarmed queue that is also the rule ' +
          "target's DLQ), which keeps the error with the event; a DLQ as well would receive every failure twice.",
      });

      const rule = new events.Rule(this, `${capitalize(target)}Rule`, {
        ruleName: name(NAMES.realtimeRule(target)),
        description: `${route.handles.join(', ')} to ${name('realtime', target)}`,
        eventBus: props.appBus,
        eventPattern: topicsPattern(registry, route.handles, 'app'),
      });
      rule.addTarget(
        new targets.LambdaFunction(f.alias, {
          deadLetterQueue: dlq,
          retryAttempts: delivery.retryAttempts,
          maxEventAge: Duration.minutes(delivery.maxEventAgeMinutes),
        }),
      );
      Validations.of(rule).acknowledge({
        id: '@aws-cdk/aws-events:ruleUnresolvedEnvironment',
        reason: 'Stacks may be account-agnostic; the rule and its targets are in one Stage, so one account and region.',
      });
      rules[target] = rule;
    }
    fns.dashboard = this.dashboardFunction(props, fn);
    this.functions = fns;
    this.rules = rules;

    // --- brand follow-ups to their queue ---------------------------------------------------
    new BusRuleToQueue(this, 'BrandRequestsRule', {
      delivery,
      bus: props.appBus,
      ruleName: name(NAMES.brandRequests),
      description: `${BRAND_REQUEST_TOPICS.join(', ')} to the brand requests queue`,
      eventPattern: topicsPattern(registry, BRAND_REQUEST_TOPICS, 'app'),
      queueArn: props.brandRequests.queueArn,
      deliveryDeadLetterQueueArn: props.brandRequests.deliveryDeadLetterQueueArn,
    });

    // --- the token secret's rotation -------------------------------------------------------
    new SigningSecretRotation(this, 'TokenSecretRotation', {
      envName: props.envName,
      secretArn: props.tokenSecretArn,
      key,
      alarmTopic: props.alarmTopic,
      everyDays: settings.tokenSecretRotationDays,
      logRetention: props.logRetention,
      removalPolicy: props.removalPolicy,
      name: 'realtime-token-secret-rotation',
      secretDescription: 'the realtime connect token signing secret',
    });

    // --- alarms ------------------------------------------------------------------------------
    for (const [role, f] of Object.entries(fns)) {
      alarmToTopic(this, `${capitalize(role)}ErrorsAlarm`, f.function.metricErrors({ period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM }), props.alarmTopic, {
        alarmName: name('realtime', role, 'errors'),
        alarmDescription:
          role === 'authorizer' || role === 'connections'
            ? `${name('realtime', role)} failed invocations: clients cannot connect, disconnect or subscribe cleanly. See its logs.`
            : role === 'dashboard'
              ? `${name('realtime', role)} failed invocations: its stream batches are retried, bisected, then described in ${name('realtime-dashboard-on-failure')}. See its logs.`
              : `${name('realtime', role)} failed invocations: Lambda retries them, then they go to ${name(NAMES.realtimeRule(role))}-dlq. See its logs.`,
        threshold: 1,
      });
    }
    alarmToTopic(
      this,
      'DashboardIteratorAgeAlarm',
      fns.dashboard.function.metric('IteratorAge', { statistic: 'Maximum', period: Duration.minutes(1) }),
      props.alarmTopic,
      {
        alarmName: name('realtime-dashboard-lag'),
        alarmDescription: `The dashboard function is more than ${settings.dashboard.iteratorAgeAlarmSeconds} s behind the ingest state table's stream (IteratorAge): live dashboards show stale states.`,
        threshold: settings.dashboard.iteratorAgeAlarmSeconds * 1000,
      },
    );
  }

  /**
   * Live dashboard updates: the ingest state table's stream (INSERT and MODIFY only, by the
   * mapping's filter) → the subscribers of each entity's type and of the entity. Partial batch
   * responses, bisection, bounded retries and record age, then the alarmed on-failure queue.
   */
  private dashboardFunction(
    props: RealtimeProps,
    fn: (role: string, description: string, memoryMb: number, timeoutSeconds: number, environment: Record<string, string>) => RustFunction,
  ): RustFunction {
    const { settings, key } = props;
    const stack = Stack.of(this);
    const ingestTable = resourceName(props.envName, NAMES.ingestState);
    const f = fn(
      'dashboard',
      'Live dashboards: ingest state table stream → the WebSocket connections subscribed to the entity or its type',
      settings.dashboard.memoryMb,
      settings.dashboard.timeoutSeconds,
      {
        CONNECTIONS_TABLE_NAME: props.connectionsTable.tableName,
        SUBSCRIPTIONS_TABLE_NAME: props.subscriptionsTable.tableName,
        WEBSOCKET_ENDPOINT: this.stage.callbackUrl,
      },
    );
    f.function.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'ListAndForgetSubscriptions',
        actions: ['dynamodb:Query', 'dynamodb:DeleteItem'],
        resources: [props.subscriptionsTable.tableArn, `${props.subscriptionsTable.tableArn}/index/ByConnection`],
      }),
    );
    f.function.addToRolePolicy(
      new iam.PolicyStatement({ sid: 'ForgetGoneConnections', actions: ['dynamodb:DeleteItem'], resources: [props.connectionsTable.tableArn] }),
    );
    f.function.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'ReadTheIngestTableStream',
        actions: ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator'],
        resources: [props.ingestTable.tableStreamArn],
      }),
    );
    f.function.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'ListTheIngestTableStreams',
        actions: ['dynamodb:ListStreams'],
        resources: [stack.formatArn({ service: 'dynamodb', resource: 'table', resourceName: `${ingestTable}/stream/*` })],
      }),
    );
    const literal = (value: string, token: string) => (Token.isUnresolved(value) ? `<${token}>` : value);
    Validations.of(f.role).acknowledge({
      id:
        `AwsSolutions-IAM5[Resource::arn:${literal(stack.partition, 'AWS::Partition')}:dynamodb:` +
        `${literal(stack.region, 'AWS::Region')}:${literal(stack.account, 'AWS::AccountId')}:table/${ingestTable}/stream/*]`,
      reason: 'ListStreams on the streams of the ingest state table only (a stream ARN ends in its creation time).',
    });
    f.function.addToRolePolicy(keyUseThroughServices('UsePlatformKeyThroughDynamoDbAndSqs', key, stack.region, ['dynamodb', 'sqs']));
    this.websocket.grantPush(f);

    // Without its key: `SqsDlq` would grant kms:*DataKey* and ReEncrypt* on it; the role's
    // platform-key statement (through sqs) is narrower.
    const onFailure = sqs.Queue.fromQueueArn(this, 'DashboardOnFailureQueue', props.dashboardOnFailureQueueArn);
    new lambda.EventSourceMapping(this, 'DashboardStream', {
      target: f.alias,
      eventSourceArn: props.ingestTable.tableStreamArn,
      startingPosition: lambda.StartingPosition.LATEST,
      batchSize: settings.dashboard.batchSize,
      maxBatchingWindow: Duration.seconds(settings.dashboard.batchWindowSeconds),
      reportBatchItemFailures: true,
      bisectBatchOnError: true,
      maxRecordAge: Duration.seconds(settings.dashboard.maxRecordAgeSeconds),
      retryAttempts: settings.dashboard.retryAttempts,
      onFailure: new sources.SqsDlq(onFailure),
      filters: [lambda.FilterCriteria.filter({ eventName: lambda.FilterRule.or('INSERT', 'MODIFY') })],
    });
    Validations.of(f.function).acknowledge({
      id: 'Serverless-LambdaDLQ',
      reason:
        "Invoked by a DynamoDB stream event source mapping, not asynchronously: failed batches go to the mapping's " +
        'on-failure destination (the alarmed realtime-dashboard-on-failure queue), which is where a DLQ would be.',
    });
    return f;
  }
}


function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
