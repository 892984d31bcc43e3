import { CfnOutput, Duration, type RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sources from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { EnvName, TunnelConfig } from '../config';
import { METRICS_NAMESPACE, NAMES, resourceName } from '../naming';
import { type RegistryManifest, registryTopic, topicPattern, topicsPattern } from '../registry';
import { alarmToTopic, emfCounter } from '../constructs/alarms';
import { BusRuleToQueue } from '../constructs/bus-rule-to-queue';
import type { RuleTargetDelivery } from '../constructs/defaults';
import { loggedHttpApi } from '../constructs/http-api';
import { keyUseThroughServices, putEventsConditions } from '../constructs/policies';
import { RustFunction } from '../constructs/rust-function';
import { TokenWebSocketApi } from '../constructs/websocket-api';
import { SigningSecretRotation } from './secret-rotation';
import { bodiesBucketName, rolloutParameterName } from './tunnel-state';

/** What the tunnel publishes for other consumers. */
export const TUNNEL_RESPONSE_TOPICS = ['tunnel.response.ready'];

/** The audience of tunnel connect tokens (`tunnel::functions::CONNECT_TOKEN_AUDIENCE`). */
export const TUNNEL_TOKEN_AUDIENCE = 'eventfabric:tunnel.connect';

/** The tunnel's functions, by `TUNNEL_ROLE`. */
export type TunnelRole = 'forward' | 'connections' | 'notifier' | 'authorizer';

export interface TunnelProps {
  readonly envName: EnvName;
  readonly registry: RegistryManifest;
  readonly settings: TunnelConfig;
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
  readonly delivery?: RuleTargetDelivery;
  /** From the platform. */
  readonly key: kms.IKey;
  readonly alarmTopic: sns.ITopic;
  readonly appBus: events.IEventBus;
  /** From `TunnelState`. */
  readonly pendingTable: dynamodb.ITable;
  readonly connectionsTable: dynamodb.ITable;
  readonly tokenSecretArn: string;
  readonly notifierOnFailureQueueArn: string;
  readonly responses: { readonly queueArn: string; readonly deliveryDeadLetterQueueArn: string };
}

/**
 * The HTTP tunnel's stateless half (`lambdas/tunnel/README.md`), one binary (`tunnel`) with
 * `TUNNEL_ROLE` picking the role:
 * - the public HTTP API, `ANY /tunnel/{agent}/{proxy+}` → `forward`, which stores the request,
 *   sends it to the agent and waits (pushed or polling, by the rollout parameter);
 * - the agents' WebSocket API (token in the `Authorization` header; `$connect`,
 *   `$disconnect`, `$default`, `response`, `whoami` → `connections`), which the forwarding
 *   function also holds a connection to, to be woken;
 * - `notifier` on the pending table's stream (MODIFY with new status `completed`, by the
 *   mapping's filter): the backup wake-up and `HttpResponseReady`; partial batch responses,
 *   bisection, bounded retries and age, the alarmed on-failure queue;
 * - the rule routing `HttpResponseReady` (pattern from the registry) to the responses inbox;
 * - the token secret's rotation; alarms on errors, timeouts and the notifier's lag.
 */
export class Tunnel extends Construct {
  readonly functions: Record<TunnelRole, RustFunction>;
  readonly httpApi: apigw.HttpApi;
  readonly websocket: TokenWebSocketApi;
  private readonly envName: EnvName;

  constructor(scope: Construct, id: string, props: TunnelProps) {
    super(scope, id);
    this.envName = props.envName;
    const { settings, key } = props;
    const name = (...parts: string[]) => resourceName(props.envName, ...parts);
    const stack = Stack.of(this);
    const region = stack.region;
    const fn = (role: TunnelRole, description: string, memoryMb: number, timeoutSeconds: number, environment: Record<string, string>) =>
      new RustFunction(this, `${capitalize(role)}Function`, {
        binary: 'tunnel',
        crateDir: 'tunnel',
        functionName: name('tunnel', role),
        description,
        memoryMb,
        timeout: Duration.seconds(timeoutSeconds),
        environment: { TUNNEL_ROLE: role, METRICS_NAMESPACE, ...environment },
        logRetention: props.logRetention,
        removalPolicy: props.removalPolicy,
      });
    const allow = (f: RustFunction, sid: string, actions: string[], resources: string[]) =>
      f.function.addToRolePolicy(new iam.PolicyStatement({ sid, actions, resources }));
    const pendingArn = props.pendingTable.tableArn;
    // Named, not imported: the acknowledgement below can then name the resource exactly.
    const bodiesBucket = bodiesBucketName(props.envName, stack.account);
    const bodyObjects = `arn:${stack.partition}:s3:::${bodiesBucket}/responses/*`;
    const connectionsArn = props.connectionsTable.tableArn;

    // --- the agents' WebSocket API -------------------------------------------------------
    const authorizer = fn('authorizer', 'Tunnel WebSocket $connect authorizer: a signed connect token, the agent (or waiter) from its subject', 128, 5, {
      TOKEN_SECRET_ARN: props.tokenSecretArn,
      TOKEN_AUDIENCE: TUNNEL_TOKEN_AUDIENCE,
    });
    const connections = fn('connections', 'Tunnel WebSocket routes: $connect (quota), $disconnect, $default (ping), response (an agent answers), whoami', 256, 10, {
      CONNECTIONS_TABLE_NAME: props.connectionsTable.tableName,
      CONNECTIONS_PER_AGENT: String(settings.websocket.connectionsPerAgent),
      PENDING_TABLE_NAME: props.pendingTable.tableName,
      BODIES_BUCKET_NAME: bodiesBucket,
    });
    allow(connections, 'RecordConnections', ['dynamodb:PutItem', 'dynamodb:DeleteItem'], [connectionsArn]);
    allow(connections, 'CountAnAgentsConnections', ['dynamodb:Query'], [`${connectionsArn}/index/ByPrincipal`]);
    // UpdateItem stores the answer (conditionally); GetItem only tells a repeated answer from an unknown request.
    allow(connections, 'StoreAnswers', ['dynamodb:UpdateItem', 'dynamodb:GetItem'], [pendingArn]);
    allow(connections, 'StoreLargeBodies', ['s3:PutObject'], [bodyObjects]);
    connections.function.addToRolePolicy(keyUseThroughServices('UsePlatformKeyThroughDynamoDbAndS3', key, region, ['dynamodb', 's3']));
    this.acknowledgeObjects(connections, 'PutObject under responses/<agent>/<request id>: one object per large answer, keyed by ids known only at run time.');

    this.websocket = new TokenWebSocketApi(this, 'WebSocket', {
      apiName: name('tunnel-agents'),
      description: 'HTTP tunnel agents (and the forwarding function, to be woken): connect with a tunnel token',
      authorizer,
      authorizerName: name('tunnel-connect'),
      tokenSecretArn: props.tokenSecretArn,
      key,
      // Agents and the forwarding function are programs, not browsers: a header keeps the token
      // out of URLs.
      identitySource: 'route.request.header.Authorization',
      connections,
      routes: ['response', 'whoami'],
      throttle: { rateLimit: settings.websocket.throttleRatePerSec, burstLimit: settings.websocket.throttleBurst },
      logRetention: props.logRetention,
      removalPolicy: props.removalPolicy,
      endpointDescription:
        'Agents connect here with Authorization: Bearer <token> (audience eventfabric:tunnel.connect, subject = the agent id, scope tunnel:agent)',
    });
    const stage = this.websocket.stage;
    // The response route wakes the waiter itself (the fast path).
    connections.function.addEnvironment('WEBSOCKET_ENDPOINT', stage.callbackUrl);
    this.websocket.grantPush(connections);

    // --- the forwarding function and the HTTP API -------------------------------------------
    const forward = fn(
      'forward',
      'HTTP tunnel: ANY /tunnel/{agent}/{proxy+} → the agent over WebSocket → its answer (woken by a push, or polling)',
      settings.forward.memoryMb,
      settings.forward.waitSeconds + 3,
      {
        PENDING_TABLE_NAME: props.pendingTable.tableName,
        CONNECTIONS_TABLE_NAME: props.connectionsTable.tableName,
        WEBSOCKET_ENDPOINT: stage.callbackUrl,
        WAITER_WEBSOCKET_URL: stage.url,
        TOKEN_SECRET_ARN: props.tokenSecretArn,
        TOKEN_AUDIENCE: TUNNEL_TOKEN_AUDIENCE,
        ROLLOUT_PARAMETER_NAME: rolloutParameterName(props.envName),
        BODIES_BUCKET_NAME: bodiesBucket,
        TUNNEL_TIMEOUT_SECONDS: String(settings.forward.waitSeconds),
      },
    );
    // PutItem creates the pending item (once); GetItem is the waiter's read; DeleteItem
    // removes the item of a request no agent took.
    allow(forward, 'TrackPendingRequests', ['dynamodb:PutItem', 'dynamodb:GetItem', 'dynamodb:DeleteItem'], [pendingArn]);
    allow(forward, 'FindAnAgentsConnections', ['dynamodb:Query'], [`${connectionsArn}/index/ByPrincipal`]);
    allow(forward, 'ForgetGoneAgentConnections', ['dynamodb:DeleteItem'], [connectionsArn]);
    allow(forward, 'ReadLargeBodies', ['s3:GetObject'], [bodyObjects]);
    allow(forward, 'ReadTheRollout', ['ssm:GetParameter'], [stack.formatArn({ service: 'ssm', resource: 'parameter', resourceName: rolloutParameterName(props.envName).slice(1) })]);
    // The waiter signs its own connect token (scope tunnel:waiter, five minutes).
    allow(forward, 'SignWaiterTokens', ['secretsmanager:GetSecretValue'], [props.tokenSecretArn]);
    forward.function.addToRolePolicy(
      keyUseThroughServices('UsePlatformKeyThroughDynamoDbS3AndSecrets', key, region, ['dynamodb', 's3', 'secretsmanager']),
    );
    this.websocket.grantPush(forward);
    this.acknowledgeObjects(forward, 'GetObject under responses/<agent>/<request id>: the answer the item points to, keyed by ids known only at run time.');
    Validations.of(forward.function).acknowledge({
      id: 'Serverless-LambdaDLQ',
      reason: 'Invoked synchronously by the HTTP API (the caller gets the answer or a 502/503/504); there is no asynchronous event to dead-letter.',
    });

    this.httpApi = loggedHttpApi(this, 'HttpApi', {
      apiName: name('tunnel'),
      description: 'HTTP tunnel: requests to /tunnel/{agent}/… are answered by that agent',
      throttle: settings.httpThrottle,
      logRetention: props.logRetention,
      removalPolicy: props.removalPolicy,
    });
    const routes = this.httpApi.addRoutes({
      path: '/tunnel/{agent}/{proxy+}',
      methods: [apigw.HttpMethod.ANY],
      integration: new HttpLambdaIntegration('ForwardIntegration', forward.alias, {
        payloadFormatVersion: apigw.PayloadFormatVersion.VERSION_2_0,
        timeout: Duration.seconds(settings.forward.waitSeconds + 4),
      }),
    });
    for (const route of routes) {
      Validations.of(route).acknowledge({
        id: 'AwsSolutions-APIG4',
        reason:
          "A public tunnel: the agent behind it answers for its own service's authentication (the request's headers, " +
          'cookies and body reach it unchanged). The stage is throttled; agents themselves connect only with a signed token.',
      });
    }
    new CfnOutput(this, 'TunnelEndpoint', {
      value: `${this.httpApi.apiEndpoint}/tunnel/`,
      description: 'Callers reach agent <id> at <this>/<id>/<path>',
    });

    // --- the stream notifier -----------------------------------------------------------------
    const notifier = fn(
      'notifier',
      'HTTP tunnel: pending table stream (completed answers) → wake the waiter, HttpResponseReady on the app bus',
      settings.notifier.memoryMb,
      settings.notifier.timeoutSeconds,
      { WEBSOCKET_ENDPOINT: stage.callbackUrl, APP_BUS_NAME: props.appBus.eventBusName },
    );
    const published = TUNNEL_RESPONSE_TOPICS.map((t) => registryTopic(props.registry, t));
    for (const t of TUNNEL_RESPONSE_TOPICS) topicPattern(props.registry, t, 'app'); // refuses topics not on the app bus
    notifier.function.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'PublishHttpResponseReady',
        actions: ['events:PutEvents'],
        resources: [props.appBus.eventBusArn],
        conditions: putEventsConditions(
            published.map((t) => t.source as string),
            published.map((t) => t.detailType),
          ),
      }),
    );
    const streamArn = props.pendingTable.tableStreamArn as string;
    allow(notifier, 'ReadThePendingTableStream', ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator'], [streamArn]);
    const pendingName = name(NAMES.tunnelPending);
    allow(notifier, 'ListThePendingTableStreams', ['dynamodb:ListStreams'], [
      stack.formatArn({ service: 'dynamodb', resource: 'table', resourceName: `${pendingName}/stream/*` }),
    ]);
    const literal = (value: string, token: string) => (Token.isUnresolved(value) ? `<${token}>` : value);
    Validations.of(notifier.role).acknowledge({
      id:
        `AwsSolutions-IAM5[Resource::arn:${literal(stack.partition, 'AWS::Partition')}:dynamodb:` +
        `${literal(stack.region, 'AWS::Region')}:${literal(stack.account, 'AWS::AccountId')}:table/${pendingName}/stream/*]`,
      reason: 'ListStreams on the streams of the pending requests table only (a stream ARN ends in its creation time).',
    });
    notifier.function.addToRolePolicy(keyUseThroughServices('UsePlatformKeyThroughDynamoDbAndSqs', key, region, ['dynamodb', 'sqs']));
    this.websocket.grantPush(notifier);
    // Without its key: `SqsDlq` would grant kms:*DataKey* and ReEncrypt* on it; the role's
    // platform-key statement (through sqs) is narrower.
    const onFailure = sqs.Queue.fromQueueArn(this, 'NotifierOnFailureQueue', props.notifierOnFailureQueueArn);
    new lambda.EventSourceMapping(this, 'NotifierStream', {
      target: notifier.alias,
      eventSourceArn: streamArn,
      startingPosition: lambda.StartingPosition.LATEST,
      batchSize: settings.notifier.batchSize,
      reportBatchItemFailures: true,
      bisectBatchOnError: true,
      maxRecordAge: Duration.seconds(settings.notifier.maxRecordAgeSeconds),
      retryAttempts: settings.notifier.retryAttempts,
      onFailure: new sources.SqsDlq(onFailure),
      // Completions only; the notifier checks again that the old status was not completed.
      filters: [
        lambda.FilterCriteria.filter({
          eventName: lambda.FilterRule.isEqual('MODIFY'),
          dynamodb: { NewImage: { status: { S: lambda.FilterRule.isEqual('completed') } } },
        }),
      ],
    });
    Validations.of(notifier.function).acknowledge({
      id: 'Serverless-LambdaDLQ',
      reason:
        "Invoked by a DynamoDB stream event source mapping, not asynchronously: failed batches go to the mapping's " +
        'on-failure destination (the alarmed tunnel-notifier-on-failure queue), which is where a DLQ would be.',
    });
    this.functions = { forward, connections, notifier, authorizer };

    // --- HttpResponseReady to its inbox --------------------------------------------------------
    new BusRuleToQueue(this, 'ResponsesRule', {
      delivery: props.delivery,
      bus: props.appBus,
      ruleName: name(NAMES.tunnelResponses),
      description: `${TUNNEL_RESPONSE_TOPICS.join(', ')} to the tunnel responses queue`,
      eventPattern: topicsPattern(props.registry, TUNNEL_RESPONSE_TOPICS, 'app'),
      queueArn: props.responses.queueArn,
      deliveryDeadLetterQueueArn: props.responses.deliveryDeadLetterQueueArn,
    });

    // --- the token secret's rotation -----------------------------------------------------------
    new SigningSecretRotation(this, 'TokenSecretRotation', {
      envName: props.envName,
      secretArn: props.tokenSecretArn,
      key,
      alarmTopic: props.alarmTopic,
      everyDays: settings.tokenSecretRotationDays,
      logRetention: props.logRetention,
      removalPolicy: props.removalPolicy,
      name: 'tunnel-token-secret-rotation',
      secretDescription: 'the tunnel connect token signing secret',
    });

    // --- alarms ----------------------------------------------------------------------------------
    const what: Record<TunnelRole, string> = {
      forward: 'callers get 5xx from the function itself (not the 502/504 it answers). See its logs.',
      connections: 'agents cannot connect or answer. See its logs.',
      notifier: `its stream batches are retried, bisected, then described in ${name('tunnel-notifier-on-failure')}. See its logs.`,
      authorizer: 'agents and waiters cannot connect (waiting requests fall back to polling). See its logs.',
    };
    for (const [role, f] of Object.entries(this.functions) as [TunnelRole, RustFunction][]) {
      alarmToTopic(this, `${capitalize(role)}ErrorsAlarm`, f.function.metricErrors({ period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM }), props.alarmTopic, {
        alarmName: name('tunnel', role, 'errors'),
        alarmDescription: `${name('tunnel', role)} failed invocations: ${what[role]}`,
        threshold: 1,
      });
    }
    const emf = (metricName: string) => emfCounter('tunnel-forward', metricName);
    const timeouts = alarmToTopic(this, 'TimeoutsAlarm', emf('TunnelTimeouts'), props.alarmTopic, {
      alarmName: name('tunnel-timeouts'),
      alarmDescription:
        `More than ${settings.timeoutsAlarmThreshold} tunnel requests in 5 minutes got 504 (no answer in ${settings.forward.waitSeconds} s). ` +
        'If it started with a rollout change, set useEventDriven false (lambdas/tunnel/README.md, runbook).',
      threshold: settings.timeoutsAlarmThreshold,
    });
    // A version whose callers time out rolls back (CodeDeploy), whatever its error rate.
    this.functions.forward.addRollbackAlarm(timeouts);
    alarmToTopic(this, 'WaiterUnavailableAlarm', emf('TunnelWaiterUnavailable'), props.alarmTopic, {
      alarmName: name('tunnel-waiter-unavailable'),
      alarmDescription:
        'Event-driven requests fell back to polling: the forwarding function could not hold its WebSocket connection ' +
        '(authorizer, token secret or API). Answers still arrive, later and with more reads.',
      threshold: 10,
    });
    alarmToTopic(
      this,
      'NotifierIteratorAgeAlarm',
      notifier.function.metric('IteratorAge', { statistic: 'Maximum', period: Duration.minutes(1) }),
      props.alarmTopic,
      {
        alarmName: name('tunnel-notifier-lag'),
        alarmDescription: `The tunnel notifier is more than ${settings.notifier.iteratorAgeAlarmSeconds} s behind the pending table's stream: backup wake-ups and HttpResponseReady are late.`,
        threshold: settings.notifier.iteratorAgeAlarmSeconds * 1000,
      },
    );
  }

  /** The cdk-nag acknowledgement of the object wildcard under `responses/` in the bodies bucket. */
  private acknowledgeObjects(f: RustFunction, reason: string): void {
    const stack = Stack.of(this);
    const literal = (value: string, token: string) => (Token.isUnresolved(value) ? `<${token}>` : value);
    Validations.of(f.role).acknowledge({
      id:
        `AwsSolutions-IAM5[Resource::arn:${literal(stack.partition, 'AWS::Partition')}:s3:::` +
        `${bodiesBucketName(this.envName, literal(stack.account, 'AWS::AccountId'))}/responses/*]`,
      reason,
    });
  }
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
