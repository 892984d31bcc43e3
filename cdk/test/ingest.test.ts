import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { buildApp } from '../lib/app';
import { envConfig } from '../lib/config';
import { checkCapacity, monthlyCost, requiredShards } from '../lib/ingest-capacity';

const cdkContext = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'cdk.json'), 'utf8')).context;

function synth(env: string) {
  const app = new App({ context: { ...cdkContext, env, 'aws:cdk:bundling-stacks': [] } });
  const { stage } = buildApp(app);
  return {
    stateful: Template.fromStack(stage.ingestStateful),
    stateless: Template.fromStack(stage.ingestStateless),
  };
}

const prod = synth('prod');
type Json = Record<string, any>;

describe('ingest capacity model', () => {
  test("the plan's peak needs 5 shards by records (2 shards cannot carry 4,000 events/s)", () => {
    assert.deepEqual(requiredShards({ eventsPerSecond: 4000, eventBytes: 512 }), { byRecords: 5, byBytes: 3, shards: 5 });
    assert.deepEqual(requiredShards({ eventsPerSecond: 100, eventBytes: 100_000 }).byBytes, 12);
  });

  test('synth fails when an environment cannot carry its declared peak, naming the fix', () => {
    const prodIngest = envConfig('prod').ingest;
    assert.throws(
      () => checkCapacity('prod', { ...prodIngest, stream: { ...prodIngest.stream, capacity: { mode: 'provisioned', shards: 2 } } }),
      /declared peak of 4000 events\/s × 600 bytes .* 2 provisioned shard\(s\) .* shards: 5 \}/,
    );
    // On-demand starts at 4,000 records/s: at 80 % that is not the plan's burst.
    assert.throws(
      () => checkCapacity('prod', { ...prodIngest, stream: { ...prodIngest.stream, capacity: { mode: 'on-demand' } } }),
      /an on-demand stream/,
    );
    for (const env of ['dev', 'staging', 'prod']) checkCapacity(env, envConfig(env).ingest);
  });

  test("the cost estimate has a line per service and prod's configured capacity in it", () => {
    const estimate = monthlyCost(envConfig('prod').ingest);
    const shards = estimate.lines.find((l) => l.item.startsWith('Kinesis: 5 shard'));
    assert.ok(shards && Math.abs(shards.usd - 5 * 730 * 0.015) < 1e-9);
    assert.ok(estimate.totalUsd > 0);
    assert.equal(Math.round(estimate.eventsPerMonth / 1e6), 5256);
  });
});

describe('ingest stateful stack', () => {
  test('the stream is KMS-encrypted with the platform key, 24 h, provisioned per env', () => {
    prod.stateful.hasResourceProperties('AWS::Kinesis::Stream', {
      Name: 'eventfabric-prod-ingest',
      RetentionPeriodHours: 24,
      ShardCount: 5,
      StreamEncryption: { EncryptionType: 'KMS', KeyId: Match.anyValue() },
    });
  });

  test('the state table: entity_id/entity_type keys, EntityTypeIndex on type + timestamp, stream on, CMK', () => {
    prod.stateful.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [
        { AttributeName: 'entity_id', KeyType: 'HASH' },
        { AttributeName: 'entity_type', KeyType: 'RANGE' },
      ],
      GlobalSecondaryIndexes: [
        Match.objectLike({
          IndexName: 'EntityTypeIndex',
          KeySchema: [
            { AttributeName: 'entity_type', KeyType: 'HASH' },
            { AttributeName: 'timestamp', KeyType: 'RANGE' },
          ],
        }),
      ],
      StreamSpecification: { StreamViewType: 'NEW_AND_OLD_IMAGES' },
      SSESpecification: Match.objectLike({ SSEEnabled: true, SSEType: 'KMS' }),
    });
  });

  test('the archive reads the stream into hourly Parquet partitions with a 64 MiB buffer and an error prefix', () => {
    const [, stream] = Object.entries(prod.stateful.findResources('AWS::KinesisFirehose::DeliveryStream'))[0] as [string, Json];
    const s3 = stream.Properties.ExtendedS3DestinationConfiguration;
    assert.equal(stream.Properties.DeliveryStreamType, 'KinesisStreamAsSource');
    assert.equal(s3.BufferingHints.SizeInMBs, 64);
    assert.equal(s3.Prefix, 'ingest/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/');
    assert.match(s3.ErrorOutputPrefix, /^errors\/!\{firehose:error-output-type\}\/year=/);
    prod.stateful.hasResourceProperties('AWS::Glue::Table', {
      TableInput: Match.objectLike({
        Name: 'ingest_events',
        PartitionKeys: [Match.objectLike({ Name: 'year' }), Match.objectLike({ Name: 'month' }), Match.objectLike({ Name: 'day' }), Match.objectLike({ Name: 'hour' })],
      }),
    });
  });

  test('the malformed topic is encrypted and TLS-only', () => {
    prod.stateful.hasResourceProperties('AWS::SNS::Topic', { TopicName: 'eventfabric-prod-ingest-malformed', KmsMasterKeyId: Match.anyValue() });
  });
});

describe('ingest stateless stack', () => {
  test('POST /api/ingest requires IAM (SigV4) and the stage is throttled', () => {
    prod.stateless.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: 'POST /api/ingest', AuthorizationType: 'AWS_IAM' });
    prod.stateless.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      DefaultRouteSettings: Match.objectLike({ ThrottlingRateLimit: 4000, ThrottlingBurstLimit: 8000 }),
    });
  });

  test('the processor reads through an enhanced fan-out consumer with the batch settings of the plan', () => {
    prod.stateless.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('ProcessorConsumer'), 'ConsumerARN'] },
      BatchSize: 100,
      MaximumBatchingWindowInSeconds: 5,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BisectBatchOnFunctionError: true,
      MaximumRecordAgeInSeconds: 86400,
      MaximumRetryAttempts: 10,
      ParallelizationFactor: 1,
      DestinationConfig: { OnFailure: { Destination: Match.anyValue() } },
    });
  });

  test('roles name their resources: no wildcard action, no wildcard resource but X-Ray', () => {
    for (const [id, policy] of Object.entries(prod.stateless.findResources('AWS::IAM::Policy')) as [string, Json][]) {
      for (const statement of policy.Properties.PolicyDocument.Statement) {
        const actions: string[] = [statement.Action].flat();
        assert.ok(actions.every((a) => !a.includes('*')), `${id}: ${actions}`);
        if (statement.Resource === '*') {
          assert.ok(actions.every((a) => a.startsWith('xray:')), `${id}: ${actions} on *`);
        }
      }
    }
  });

  test('alarms: processor lag, archive lag, write throttling, malformed rate (metric math), unwritten, processor errors', () => {
    const names = Object.values(prod.stateless.findResources('AWS::CloudWatch::Alarm')).map((a: Json) => a.Properties.AlarmName);
    assert.deepEqual(names.sort(), [
      'eventfabric-prod-ingest-api-rollback-errors',
      'eventfabric-prod-ingest-api-rollback-latency',
      'eventfabric-prod-ingest-archive-lag',
      'eventfabric-prod-ingest-malformed-rate',
      'eventfabric-prod-ingest-unwritten',
      'eventfabric-prod-ingest-write-throttled',
      'eventfabric-prod-stream-processor-errors',
      'eventfabric-prod-stream-processor-lag',
      'eventfabric-prod-stream-processor-rollback-errors',
      'eventfabric-prod-stream-processor-rollback-latency',
    ]);
    prod.stateless.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'eventfabric-prod-ingest-malformed-rate',
      Threshold: 5,
      Metrics: Match.arrayWith([Match.objectLike({ Expression: 'IF(records > 0, 100 * malformed / records, 0)' })]),
    });
    prod.stateless.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'eventfabric-prod-stream-processor-lag',
      MetricName: 'IteratorAge',
      Threshold: 60000,
    });
  });

  test('a dashboard and the plan\'s $300 monthly budget alerting the alarm topic', () => {
    prod.stateless.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    prod.stateless.hasResourceProperties('AWS::Budgets::Budget', {
      Budget: Match.objectLike({ BudgetLimit: { Amount: 300, Unit: 'USD' }, TimeUnit: 'MONTHLY' }),
      NotificationsWithSubscribers: Match.arrayWith([
        Match.objectLike({ Subscribers: [Match.objectLike({ SubscriptionType: 'SNS' })] }),
      ]),
    });
  });
});
