import { Duration, type RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as glue from 'aws-cdk-lib/aws-glue';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as firehose from 'aws-cdk-lib/aws-kinesisfirehose';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import type { EnvConfig } from '../config';
import type { GlueColumn } from '../registry';
import { alarmToTopic } from './alarms';

export interface AnalyticsArchiveProps {
  readonly key: kms.IKey;
  readonly alarmTopic: sns.ITopic;
  /** Lifecycle, buffering and alarm settings (per environment). */
  readonly settings: EnvConfig['analyticsArchive'];
  /** For descriptions. */
  readonly envName: string;
  readonly removalPolicy: RemovalPolicy;
  readonly logRetention: logs.RetentionDays;
  /** `eventfabric-<env>-analytics-archive`: bucket, stream and Glue database are named from it. */
  readonly name: string;
  /** Columns from the topic registry (`analyticsArchiveColumns` of the manifest). */
  readonly columns: GlueColumn[];
  /** Topics that can appear (partition projection values). */
  readonly topics: string[];
}

/** Where the Parquet files go, under the bucket; partitions follow. */
export const DATA_PREFIX = 'analytics/';
export const ERROR_PREFIX = 'errors/';

/**
 * The analytics archive: Firehose (direct put, CMK-encrypted) → S3 as Parquet through a Glue
 * table whose columns come from the registry, dynamically partitioned
 * `dt=YYYY-MM-DD/topic=<topic>/` (arrival day; topic from the record), failures under
 * `errors/<error type>/dt=…/`. The bucket is KMS-encrypted, TLS-only, never public, with access
 * logs, and moves data to Glacier (and optionally expires it) per environment. The Glue table
 * uses partition projection, so Athena queries need no crawler or `MSCK REPAIR`.
 *
 * The rule that feeds the stream lives in the stateless stack (see `AnalyticsRoute`).
 */
export class AnalyticsArchive extends Construct {
  readonly bucket: s3.Bucket;
  readonly accessLogs: s3.Bucket;
  readonly database: glue.CfnDatabase;
  readonly table: glue.CfnTable;
  readonly deliveryStream: firehose.CfnDeliveryStream;
  readonly databaseName: string;
  readonly tableName = 'interface_events';

  constructor(scope: Construct, id: string, props: AnalyticsArchiveProps) {
    super(scope, id);
    const { key, settings, name, removalPolicy } = props;
    const stack = Stack.of(this);
    if (props.columns.length === 0) {
      throw new Error('AnalyticsArchive needs columns: no topic is forwarded to the analytics bus');
    }

    this.accessLogs = new s3.Bucket(this, 'AccessLogs', {
      bucketName: `${name}-access-logs-${stack.account}`,
      // S3 server access logging only delivers to SSE-S3 buckets.
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
      lifecycleRules: [{ expiration: Duration.days(settings.accessLogRetentionDays) }],
      removalPolicy,
    });
    Validations.of(this.accessLogs).acknowledge({
      id: 'AwsSolutions-S1',
      reason: 'This is the access log bucket of the archive; logging it into itself would loop.',
    });

    this.bucket = new s3.Bucket(this, 'Bucket', {
      bucketName: `${name}-${stack.account}`,
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: key,
      bucketKeyEnabled: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      versioned: false,
      serverAccessLogsBucket: this.accessLogs,
      serverAccessLogsPrefix: 'archive/',
      lifecycleRules: [
        {
          id: 'glacier',
          transitions: [
            {
              storageClass: s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
              transitionAfter: Duration.days(settings.glacierAfterDays),
            },
          ],
          ...(settings.expireAfterDays
            ? { expiration: Duration.days(settings.expireAfterDays) }
            : {}),
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
      ],
      removalPolicy,
    });

    this.databaseName = name.replace(/-/g, '_');
    this.database = new glue.CfnDatabase(this, 'Database', {
      catalogId: stack.account,
      databaseInput: { name: this.databaseName, description: `eventfabric ${props.envName}: analytics archive` },
    });
    const location = `s3://${this.bucket.bucketName}/${DATA_PREFIX}`;
    this.table = new glue.CfnTable(this, 'Table', {
      catalogId: stack.account,
      databaseName: this.databaseName,
      tableInput: {
        name: this.tableName,
        description: 'Interface events of the analytics bus, as forwarded (redacted). Columns generated from the topic registry.',
        tableType: 'EXTERNAL_TABLE',
        partitionKeys: [
          { name: 'dt', type: 'string', comment: 'arrival day, YYYY-MM-DD (UTC)' },
          { name: 'topic', type: 'string', comment: 'canonical registry topic' },
        ],
        parameters: {
          classification: 'parquet',
          'parquet.compression': 'SNAPPY',
          'projection.enabled': 'true',
          'projection.dt.type': 'date',
          'projection.dt.format': 'yyyy-MM-dd',
          'projection.dt.range': '2026-01-01,NOW',
          'projection.topic.type': 'enum',
          'projection.topic.values': [...props.topics].sort().join(','),
          'storage.location.template': `${location}dt=\${dt}/topic=\${topic}/`,
        },
        storageDescriptor: {
          // The partition key `topic` is also the record's topic: keep the data column apart.
          columns: props.columns
            .filter((c) => c.name !== 'topic')
            .map((c) => ({ name: c.name, type: c.type, comment: c.comment })),
          location,
          inputFormat: 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat',
          outputFormat: 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat',
          serdeInfo: { serializationLibrary: 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe' },
        },
      },
    });
    this.table.addResourceDependency(this.database);

    const errorLogs = new logs.LogGroup(this, 'DeliveryLogs', {
      logGroupName: `/aws/kinesisfirehose/${name}`,
      retention: props.logRetention,
      removalPolicy,
    });
    const errorStream = new logs.LogStream(this, 'DeliveryErrors', { logGroup: errorLogs, logStreamName: 'S3Delivery' });

    const glueArn = (resource: string) => `arn:${stack.partition}:glue:${stack.region}:${stack.account}:${resource}`;
    const role = new iam.Role(this, 'DeliveryRole', {
      assumedBy: new iam.ServicePrincipal('firehose.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
      }),
      description: `Firehose delivery of ${name} to S3 as Parquet`,
      inlinePolicies: {
        Delivery: new iam.PolicyDocument({
          statements: [
            new iam.PolicyStatement({
              sid: 'WriteArchive',
              actions: [
                's3:AbortMultipartUpload',
                's3:GetBucketLocation',
                's3:GetObject',
                's3:ListBucket',
                's3:ListBucketMultipartUploads',
                's3:PutObject',
              ],
              resources: [this.bucket.bucketArn, this.bucket.arnForObjects('*')],
            }),
            new iam.PolicyStatement({
              sid: 'ReadTableSchema',
              actions: ['glue:GetTable', 'glue:GetTableVersion', 'glue:GetTableVersions'],
              resources: [
                glueArn('catalog'),
                glueArn(`database/${this.databaseName}`),
                glueArn(`table/${this.databaseName}/${this.tableName}`),
              ],
            }),
            new iam.PolicyStatement({
              sid: 'EncryptArchiveObjects',
              actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
              resources: [key.keyArn],
              conditions: { StringEquals: { 'kms:ViaService': `s3.${stack.region}.amazonaws.com` } },
            }),
            new iam.PolicyStatement({
              sid: 'LogDeliveryErrors',
              actions: ['logs:PutLogEvents'],
              resources: [
                `arn:${stack.partition}:logs:${stack.region}:${stack.account}:log-group:${errorLogs.logGroupName}:log-stream:${errorStream.logStreamName}`,
              ],
            }),
          ],
        }),
      },
    });
    Validations.of(role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${stack.getLogicalId(this.bucket.node.defaultChild as s3.CfnBucket)}.Arn>/*]`,
      reason: 'Firehose writes objects under generated names (partition prefixes, timestamps) in this one bucket.',
    });

    // Columns whose JSON key differs from the column name (the SerDe matches the rest
    // case-insensitively).
    const columnToJsonKeyMappings = Object.fromEntries(
      props.columns.filter((c) => c.jsonKey !== c.name).map((c) => [c.name, c.jsonKey]),
    );
    this.deliveryStream = new firehose.CfnDeliveryStream(this, 'Stream', {
      deliveryStreamName: name,
      deliveryStreamType: 'DirectPut',
      deliveryStreamEncryptionConfigurationInput: { keyType: 'CUSTOMER_MANAGED_CMK', keyArn: key.keyArn },
      extendedS3DestinationConfiguration: {
        bucketArn: this.bucket.bucketArn,
        roleArn: role.roleArn,
        prefix: `${DATA_PREFIX}dt=!{timestamp:yyyy-MM-dd}/topic=!{partitionKeyFromQuery:topic}/`,
        errorOutputPrefix: `${ERROR_PREFIX}!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/`,
        // Parquet conversion and dynamic partitioning both need buffers of at least 64 MB.
        bufferingHints: { intervalInSeconds: settings.bufferSeconds, sizeInMBs: 64 },
        compressionFormat: 'UNCOMPRESSED', // Parquet compresses its pages (Snappy)
        encryptionConfiguration: { kmsEncryptionConfig: { awskmsKeyArn: key.keyArn } },
        cloudWatchLoggingOptions: { enabled: true, logGroupName: errorLogs.logGroupName, logStreamName: errorStream.logStreamName },
        dynamicPartitioningConfiguration: { enabled: true, retryOptions: { durationInSeconds: 300 } },
        processingConfiguration: {
          enabled: true,
          processors: [
            {
              type: 'MetadataExtraction',
              parameters: [
                { parameterName: 'MetadataExtractionQuery', parameterValue: '{topic: .topic}' },
                { parameterName: 'JsonParsingEngine', parameterValue: 'JQ-1.6' },
              ],
            },
          ],
        },
        dataFormatConversionConfiguration: {
          enabled: true,
          inputFormatConfiguration: {
            deserializer: { openXJsonSerDe: { caseInsensitive: true, columnToJsonKeyMappings } },
          },
          outputFormatConfiguration: { serializer: { parquetSerDe: { compression: 'SNAPPY' } } },
          schemaConfiguration: {
            catalogId: stack.account,
            databaseName: this.databaseName,
            tableName: this.tableName,
            region: stack.region,
            roleArn: role.roleArn,
            versionId: 'LATEST',
          },
        },
      },
    });
    this.deliveryStream.node.addDependency(role);
    this.deliveryStream.addResourceDependency(this.table);

    // What can pile up unseen: records waiting to be delivered, and records that failed
    // conversion (they land under errors/, not in the table).
    const metric = (metricName: string, statistic: string) =>
      new cloudwatch.Metric({
        namespace: 'AWS/Firehose',
        metricName,
        dimensionsMap: { DeliveryStreamName: name },
        statistic,
        period: Duration.minutes(5),
      });
    alarmToTopic(this, 'FreshnessAlarm', metric('DeliveryToS3.DataFreshness', 'Maximum'), props.alarmTopic, {
      alarmName: `${name}-freshness`,
      alarmDescription: `Oldest record in ${name} is older than ${settings.freshnessAlarmSeconds} s: S3 delivery is failing or falling behind.`,
      threshold: settings.freshnessAlarmSeconds,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    });
    alarmToTopic(this, 'ConversionAlarm', metric('FailedConversion.Records', 'Sum'), props.alarmTopic, {
      alarmName: `${name}-failed-conversion`,
      alarmDescription: `Records of ${name} failed Parquet conversion and were written under ${ERROR_PREFIX}: the registry and the Glue table disagree.`,
      threshold: 1,
    });
  }
}
