import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { buildApp } from '../lib/app';
import { loadRegistry, topicsPattern } from '../lib/registry';
import { TUNNEL_RESPONSE_TOPICS } from '../lib/systems/tunnel';

const cdkContext = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'cdk.json'), 'utf8')).context;

function synth(env: string) {
  const app = new App({ context: { ...cdkContext, env, 'aws:cdk:bundling-stacks': [] } });
  const { stage } = buildApp(app);
  return { stateful: Template.fromStack(stage.tunnelStateful), stateless: Template.fromStack(stage.tunnelStateless) };
}

const prod = synth('prod');

describe('tunnel stacks', () => {
  test('pending_requests: requestId, TTL, NEW_AND_OLD_IMAGES stream, platform key, kept in prod', () => {
    prod.stateful.hasResource('AWS::DynamoDB::Table', {
      Properties: {
        TableName: 'eventfabric-prod-tunnel-pending',
        KeySchema: [{ AttributeName: 'requestId', KeyType: 'HASH' }],
        TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
        StreamSpecification: { StreamViewType: 'NEW_AND_OLD_IMAGES' },
        SSESpecification: Match.objectLike({ SSEType: 'KMS' }),
      },
      DeletionPolicy: 'Retain',
    });
  });

  test('the bodies bucket: platform key, no public access, TLS only, expiring, access-logged', () => {
    const buckets = Object.values(prod.stateful.findResources('AWS::S3::Bucket')) as Record<string, any>[];
    const bodies = buckets.find((b) => {
      const n = JSON.stringify(b.Properties.BucketName);
      return n.includes('tunnel-bodies-') && !n.includes('access-logs');
    })!;
    assert.equal(bodies.Properties.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm, 'aws:kms');
    assert.deepEqual(bodies.Properties.PublicAccessBlockConfiguration, {
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    assert.equal(bodies.Properties.LifecycleConfiguration.Rules[0].ExpirationInDays, 1);
    assert.ok(bodies.Properties.LoggingConfiguration);
    const policies = Object.values(prod.stateful.findResources('AWS::S3::BucketPolicy')).map((p) => JSON.stringify(p));
    assert.ok(policies.some((p) => p.includes('aws:SecureTransport')));
  });

  test('the notifier on-failure queue and the responses inbox are alarmed', () => {
    for (const alarm of ['eventfabric-prod-tunnel-notifier-on-failure-depth']) {
      prod.stateful.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmName: alarm });
    }
    prod.stateful.hasResourceProperties('AWS::SQS::Queue', { QueueName: 'eventfabric-prod-tunnel-responses' });
  });

  test('HttpResponseReady reaches the responses inbox through a rule generated from the registry', () => {
    const rule = (Object.values(prod.stateless.findResources('AWS::Events::Rule')) as Record<string, any>[]).find(
      (r) => r.Properties.Name === 'eventfabric-prod-tunnel-responses',
    )!;
    const expected = topicsPattern(loadRegistry(), TUNNEL_RESPONSE_TOPICS, 'app');
    assert.deepEqual(rule.Properties.EventPattern.source, expected.source);
    assert.deepEqual(rule.Properties.EventPattern['detail-type'], ['HttpResponseReady']);
    assert.deepEqual(rule.Properties.EventPattern.source, ['http-tunnel.response']);
  });

  test('the rollout parameter starts from the env config, and the agents connections table has TTL and ByPrincipal', () => {
    prod.stateful.hasResourceProperties('AWS::SSM::Parameter', {
      Name: '/eventfabric/prod/tunnel/rollout',
      Type: 'String',
      Value: JSON.stringify({ useEventDriven: true, canaryPercent: 5 }),
    });
    prod.stateful.hasResourceProperties('AWS::DynamoDB::Table', {
      TableName: 'eventfabric-prod-tunnel-connections',
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
      GlobalSecondaryIndexes: [Match.objectLike({ IndexName: 'ByPrincipal' })],
    });
    prod.stateful.hasResourceProperties('AWS::SecretsManager::Secret', { Name: 'eventfabric-prod-tunnel-token-secret' });
  });

  test('ANY /tunnel/{agent}/{proxy+} reaches the forwarding function, which waits under the integration timeout', () => {
    prod.stateless.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: 'ANY /tunnel/{agent}/{proxy+}' });
    prod.stateless.hasResourceProperties('AWS::ApiGatewayV2::Integration', {
      PayloadFormatVersion: '2.0',
      TimeoutInMillis: 29_000,
    });
    prod.stateless.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      DefaultRouteSettings: { ThrottlingRateLimit: 1000, ThrottlingBurstLimit: 2000 },
    });
    prod.stateless.hasResourceProperties('AWS::Lambda::Function', {
      FunctionName: 'eventfabric-prod-tunnel-forward',
      Timeout: 28,
      TracingConfig: { Mode: 'Active' },
      Environment: {
        Variables: Match.objectLike({ TUNNEL_ROLE: 'forward', TUNNEL_TIMEOUT_SECONDS: '25', ROLLOUT_PARAMETER_NAME: '/eventfabric/prod/tunnel/rollout' }),
      },
    });
  });

  test('the agents WebSocket API takes the token from the Authorization header and has the response and whoami routes', () => {
    prod.stateless.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
      IdentitySource: ['route.request.header.Authorization'],
    });
    for (const route of ['$connect', '$disconnect', '$default', 'response', 'whoami']) {
      prod.stateless.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: route });
    }
  });

  test('the notifier gets completions only, with partial batch responses and an on-failure destination', () => {
    const [mapping] = Object.values(prod.stateless.findResources('AWS::Lambda::EventSourceMapping')) as Record<string, any>[];
    const pattern = JSON.parse(mapping.Properties.FilterCriteria.Filters[0].Pattern);
    assert.deepEqual(pattern, { eventName: ['MODIFY'], dynamodb: { NewImage: { status: { S: ['completed'] } } } });
    assert.deepEqual(mapping.Properties.FunctionResponseTypes, ['ReportBatchItemFailures']);
    assert.equal(mapping.Properties.BisectBatchOnFunctionError, true);
    assert.ok(mapping.Properties.DestinationConfig.OnFailure.Destination);
    assert.ok(mapping.Properties.MaximumRetryAttempts >= 0);
  });

  test('no role allows a wildcard action, and each function has an errors alarm', () => {
    const policies = Object.values(prod.stateless.findResources('AWS::IAM::Policy')) as Record<string, any>[];
    for (const p of policies) {
      for (const statement of p.Properties.PolicyDocument.Statement) {
        for (const action of [statement.Action].flat()) assert.ok(!String(action).includes('*'), `${action} in ${JSON.stringify(statement)}`);
      }
    }
    for (const role of ['forward', 'connections', 'notifier', 'authorizer']) {
      prod.stateless.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmName: `eventfabric-prod-tunnel-${role}-errors` });
    }
    for (const alarm of ['eventfabric-prod-tunnel-timeouts', 'eventfabric-prod-tunnel-notifier-lag', 'eventfabric-prod-tunnel-waiter-unavailable']) {
      prod.stateless.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmName: alarm });
    }
  });
});
