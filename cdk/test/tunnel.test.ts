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
    const [rule] = Object.values(prod.stateless.findResources('AWS::Events::Rule')) as Record<string, any>[];
    const expected = topicsPattern(loadRegistry(), TUNNEL_RESPONSE_TOPICS, 'app');
    assert.deepEqual(rule.Properties.EventPattern.source, expected.source);
    assert.deepEqual(rule.Properties.EventPattern['detail-type'], ['HttpResponseReady']);
    assert.deepEqual(rule.Properties.EventPattern.source, ['http-tunnel.response']);
  });
});
