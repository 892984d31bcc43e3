import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { buildApp } from '../lib/app';
import { loadRegistry, topicsPattern } from '../lib/registry';
import { BRAND_REQUEST_TOPICS, REALTIME_ROUTES } from '../lib/systems/realtime';
import { REALTIME_RULE_TARGETS } from '../lib/systems/realtime-state';

const cdkContext = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'cdk.json'), 'utf8')).context;

function synth(env: string) {
  const app = new App({ context: { ...cdkContext, env, 'aws:cdk:bundling-stacks': [] } });
  const { stage } = buildApp(app);
  return {
    stateful: Template.fromStack(stage.realtimeStateful),
    stateless: Template.fromStack(stage.realtimeStateless),
  };
}

const dev = synth('dev');
const prod = synth('prod');
const registry = loadRegistry();

type Json = Record<string, any>;

describe('realtime stateful stack', () => {
  test('the app table: pk/sk, ByKind on kind + createdAt, TTL, platform key; PITR in prod', () => {
    for (const [t, pitr] of [
      [dev.stateful, false],
      [prod.stateful, true],
    ] as const) {
      t.hasResourceProperties('AWS::DynamoDB::Table', {
        TableName: Match.stringLikeRegexp('-realtime-app$'),
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        GlobalSecondaryIndexes: [
          Match.objectLike({
            IndexName: 'ByKind',
            KeySchema: [
              { AttributeName: 'kind', KeyType: 'HASH' },
              { AttributeName: 'createdAt', KeyType: 'RANGE' },
            ],
          }),
        ],
        TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
        SSESpecification: Match.objectLike({ SSEEnabled: true, SSEType: 'KMS' }),
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: pitr },
      });
    }
  });

  test('the connections table: connectionId, ByPrincipal on principal + connectedAt (N), TTL, platform key', () => {
    prod.stateful.hasResourceProperties('AWS::DynamoDB::Table', {
      TableName: 'eventfabric-prod-realtime-connections',
      KeySchema: [{ AttributeName: 'connectionId', KeyType: 'HASH' }],
      AttributeDefinitions: Match.arrayWith([{ AttributeName: 'connectedAt', AttributeType: 'N' }]),
      GlobalSecondaryIndexes: [Match.objectLike({ IndexName: 'ByPrincipal' })],
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
      SSESpecification: Match.objectLike({ SSEType: 'KMS' }),
    });
  });

  test('the subscriptions table: channel + connectionId, ByConnection (keys only), TTL, platform key; the dashboard on-failure queue, alarmed', () => {
    prod.stateful.hasResourceProperties('AWS::DynamoDB::Table', {
      TableName: 'eventfabric-prod-realtime-subscriptions',
      KeySchema: [
        { AttributeName: 'channel', KeyType: 'HASH' },
        { AttributeName: 'connectionId', KeyType: 'RANGE' },
      ],
      GlobalSecondaryIndexes: [
        Match.objectLike({
          IndexName: 'ByConnection',
          KeySchema: [
            { AttributeName: 'connectionId', KeyType: 'HASH' },
            { AttributeName: 'channel', KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'KEYS_ONLY' },
        }),
      ],
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
      SSESpecification: Match.objectLike({ SSEType: 'KMS' }),
    });
    prod.stateful.hasResourceProperties('AWS::SQS::Queue', {
      QueueName: 'eventfabric-prod-realtime-dashboard-on-failure',
      KmsMasterKeyId: Match.anyValue(),
    });
    prod.stateful.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmName: 'eventfabric-prod-realtime-dashboard-on-failure-depth' });
  });

  test('an alarmed, encrypted DLQ per rule-invoked function, writable by its rule only', () => {
    for (const target of REALTIME_RULE_TARGETS) {
      const queueName = `eventfabric-prod-realtime-${target}-dlq`;
      prod.stateful.hasResourceProperties('AWS::SQS::Queue', { QueueName: queueName, KmsMasterKeyId: Match.anyValue() });
      prod.stateful.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmName: `${queueName}-depth` });
      const policies = Object.values(prod.stateful.findResources('AWS::SQS::QueuePolicy')).map((p) => JSON.stringify(p));
      assert.ok(
        policies.some((p) => p.includes('AllowDeliveryFromItsRule') && p.includes(`/eventfabric-prod-realtime-${target}"`)),
        `no policy lets the rule of ${target} deliver to ${queueName}`,
      );
    }
  });
});

describe('realtime stateless stack', () => {
  test("each function's rule matches its registry topics, with retries, maximum age and its DLQ", () => {
    for (const target of REALTIME_RULE_TARGETS) {
      const pattern = topicsPattern(registry, REALTIME_ROUTES[target].handles, 'app');
      prod.stateless.hasResourceProperties('AWS::Events::Rule', {
        Name: `eventfabric-prod-realtime-${target}`,
        EventPattern: { source: pattern.source, 'detail-type': pattern.detailType },
        Targets: [
          Match.objectLike({
            RetryPolicy: { MaximumRetryAttempts: 185, MaximumEventAgeInSeconds: 86400 },
            DeadLetterConfig: { Arn: Match.anyValue() },
          }),
        ],
      });
    }
    const brand = topicsPattern(registry, BRAND_REQUEST_TOPICS, 'app');
    prod.stateless.hasResourceProperties('AWS::Events::Rule', {
      Name: 'eventfabric-prod-brand-requests',
      EventPattern: { source: brand.source, 'detail-type': brand.detailType },
    });
  });

  test('failed asynchronous invocations go to the same DLQ after two retries', () => {
    const configs = Object.values(prod.stateless.findResources('AWS::Lambda::EventInvokeConfig')) as Json[];
    assert.equal(configs.length, REALTIME_RULE_TARGETS.length);
    for (const c of configs) {
      assert.equal(c.Properties.MaximumRetryAttempts, 2);
      assert.ok(c.Properties.DestinationConfig.OnFailure.Destination, JSON.stringify(c.Properties));
    }
  });

  test('the WebSocket API: $connect behind the token authorizer (query string), throttled stage, access logs without the query string', () => {
    prod.stateless.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
      AuthorizerType: 'REQUEST',
      IdentitySource: ['route.request.querystring.token'],
    });
    prod.stateless.hasResourceProperties('AWS::ApiGatewayV2::Route', {
      RouteKey: '$connect',
      AuthorizationType: 'CUSTOM',
    });
    const [, stage] = Object.entries(prod.stateless.findResources('AWS::ApiGatewayV2::Stage'))[0] as [string, Json];
    assert.deepEqual(stage.Properties.DefaultRouteSettings, { ThrottlingBurstLimit: 2000, ThrottlingRateLimit: 1000 });
    const format: string = stage.Properties.AccessLogSettings.Format;
    assert.ok(!/querystring|queryString|\$context\.path|header/i.test(format), format);
    assert.ok(format.includes('$context.connectionId'), format);
  });

  test('the dashboard reads the ingest table stream: INSERT and MODIFY, partial batch responses, bisect, bounded age and retries, on-failure queue', () => {
    prod.stateless.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: Match.anyValue(),
      EventSourceArn: { 'Fn::ImportValue': Match.stringLikeRegexp('^eventfabric-prod-ingest-stateful:.*StateTable.*StreamArn') },
      StartingPosition: 'LATEST',
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BisectBatchOnFunctionError: true,
      MaximumRecordAgeInSeconds: 300,
      MaximumRetryAttempts: 5,
      FilterCriteria: { Filters: [{ Pattern: JSON.stringify({ eventName: ['INSERT', 'MODIFY'] }) }] },
      DestinationConfig: {
        OnFailure: { Destination: { 'Fn::ImportValue': Match.stringLikeRegexp('DashboardOnFailure') } },
      },
    });
    const names = Object.values(prod.stateless.findResources('AWS::CloudWatch::Alarm')).map((a: Json) => a.Properties.AlarmName);
    assert.ok(names.includes('eventfabric-prod-realtime-dashboard-lag'));
    const statements = (Object.values(prod.stateless.findResources('AWS::IAM::Policy')) as Json[]).flatMap((p) => p.Properties.PolicyDocument.Statement);
    const stream = statements.find((s) => s.Sid === 'ReadTheIngestTableStream');
    assert.deepEqual(stream.Resource, { 'Fn::ImportValue': stream.Resource['Fn::ImportValue'] }, 'the exact stream ARN');
  });

  test('subscribe and unsubscribe routes answer the client (route responses)', () => {
    for (const route of ['subscribe', 'unsubscribe']) {
      prod.stateless.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: route, RouteResponseSelectionExpression: '$default' });
    }
  });

  test('roles name their resources: no wildcard action; * only for X-Ray and GetRandomPassword', () => {
    for (const [id, policy] of Object.entries(prod.stateless.findResources('AWS::IAM::Policy')) as [string, Json][]) {
      for (const statement of policy.Properties.PolicyDocument.Statement) {
        const actions: string[] = [statement.Action].flat();
        assert.ok(actions.every((a) => !a.includes('*')), `${id}: ${actions}`);
        if (statement.Resource === '*') {
          assert.ok(
            actions.every((a) => a.startsWith('xray:') || a === 'secretsmanager:GetRandomPassword'),
            `${id}: ${actions} on *`,
          );
        }
      }
    }
  });

  test('processors publish only their follow-ups: PutEvents conditioned on source and detail type', () => {
    const policies = Object.values(prod.stateless.findResources('AWS::IAM::Policy')) as Json[];
    const publishing = policies.flatMap((p) =>
      p.Properties.PolicyDocument.Statement.filter((s: Json) => s.Sid === 'PublishFollowUps'),
    );
    assert.equal(publishing.length, 5);
    for (const s of publishing) {
      // Multi-valued keys: the set operator, and the keys required.
      assert.ok(s.Condition['ForAllValues:StringEquals']['events:source'].length >= 1);
      assert.ok(s.Condition['ForAllValues:StringEquals']['events:detail-type'].length >= 1);
      assert.deepEqual(s.Condition.Null, { 'events:source': 'false', 'events:detail-type': 'false' });
    }
  });

  test('an errors alarm per function, and explicit memory and timeout', () => {
    const names = Object.values(prod.stateless.findResources('AWS::CloudWatch::Alarm')).map((a: Json) => a.Properties.AlarmName);
    for (const role of [...REALTIME_RULE_TARGETS, 'authorizer', 'connections', 'dashboard']) {
      assert.ok(names.includes(`eventfabric-prod-realtime-${role}-errors`), role);
      prod.stateless.hasResourceProperties('AWS::Lambda::Function', {
        FunctionName: `eventfabric-prod-realtime-${role}`,
        MemorySize: Match.anyValue(),
        Timeout: Match.anyValue(),
        TracingConfig: { Mode: 'Active' },
        Environment: { Variables: Match.objectLike({ REALTIME_ROLE: role }) },
      });
    }
    assert.ok(names.includes('eventfabric-prod-realtime-token-secret-rotation-errors'));
  });
});
