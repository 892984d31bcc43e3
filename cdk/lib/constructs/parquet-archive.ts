import { Duration, type RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as glue from 'aws-cdk-lib/aws-glue';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as firehose from 'aws-cdk-lib/aws-kinesisfirehose';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import type { EnvConfig } from '../config';
import type { GlueColumn } from '../registry';
import { alarmToTopic } from './alarms';

/** Lifecycle, buffering and alarm settings of an archive (per environment). */
export type ArchiveSettings = EnvConfig['analyticsArchive'];

/** How the archive's objects are laid out (and partitioned in the Glue table). */
export type ArchiveLayout =
  /** `dt=YYYY-MM-DD/topic=<topic>/`: arrival day, topic read from each record (dynamic partitioning). */
  | { readonly kind: 'day-and-topic'; readonly topics: string[] }
  /** `year=YYYY/month=MM/day=DD/hour=HH/`: arrival hour, from Firehose's clock (no record parsing). */
  | { readonly kind: 'hourly' };

export interface ParquetArchiveProps {
  readonly key: kms.IKey;
  readonly alarmTopic: sns.ITopic;
  readonly settings: ArchiveSettings;
  /** For descriptions. */
  readonly envName: string;
  readonly removalPolicy: RemovalPolicy;
  readonly logRetention: logs.RetentionDays;
  /** `eventfabric-<env>-<archive>`: bucket, delivery stream and Glue database are named from it. */
  readonly name: string;
  /** Columns from the topic registry (`analyticsArchiveColumns`, `ingestArchiveColumns`). */
  readonly columns: GlueColumn[];
  readonly layout: ArchiveLayout;
  /** What is archived, for descriptions: `analytics`, `ingest`. */
  readonly label: string;
  /** The Glue table's name and description. */
  readonly tableName: string;
  readonly tableDescription: string;
  /** Where the Parquet files go, under the bucket (ends with `/`); partitions follow. */
  readonly dataPrefix: string;
  /**
   * Read the records from this Kinesis stream (Firehose's `KinesisStreamAsSource`, its own
   * shared-throughput reader), instead of taking direct puts (from an EventBridge rule).
   */
  readonly sourceStream?: kinesis.IStream;
}

/** The analytics archive's data prefix. */
export const DATA_PREFIX = 'analytics/';
export const ERROR_PREFIX = 'errors/';

/**
 * A Parquet archive: Firehose → S3 as Parquet through a Glue table whose columns come from the
 * registry. Fed by direct puts (an EventBridge rule: the analytics bus) or read from a Kinesis
 * stream (the ingest stream). Laid out by day and topic (dynamic partitioning) or by hour;
 * failures under `errors/<error type>/…`. The bucket is KMS-encrypted, TLS-only, never public,
 * with access logs, and moves data to Glacier (and optionally expires it) per environment. The
 * Glue table uses partition projection, so Athena queries need no crawler or `MSCK REPAIR`.
 * Parquet conversion needs a buffer of at least 64 MiB, which it gets.
 */
export class ParquetArchive extends Construct {
  readonly bucket: s3.Bucket;
  readonly accessLogs: s3.Bucket;
  readonly database: glue.CfnDatabase;
  readonly table: glue.CfnTable;
  readonly deliveryStream: firehose.CfnDeliveryStream;
  readonly databaseName: string;
  readonly tableName: string;

  constructor(scope: Construct, id: string, props: ParquetArchiveProps) {
    super(scope, id);
    const { key, settings, name, removalPolicy, layout } = props;
    this.tableName = props.tableName;
    const stack = Stack.of(this);
    if (props.columns.length === 0) {
      throw new Error(`ParquetArchive ${name} needs columns: no registry topic reaches it`);
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
      databaseInput: {
        name: this.databaseName,
        description: `eventfabric ${props.envName}: ${props.label} archive`,
      },
    });
    const location = `s3://${this.bucket.bucketName}/${props.dataPrefix}`;
    const partitioning =
      layout.kind === 'day-and-topic'
        ? {
            keys: [
              { name: 'dt', type: 'string', comment: 'arrival day, YYYY-MM-DD (UTC)' },
              { name: 'topic', type: 'string', comment: 'canonical registry topic' },
            ],
            projection: {
              'projection.dt.type': 'date',
              'projection.dt.format': 'yyyy-MM-dd',
              'projection.dt.range': '2026-01-01,NOW',
              'projection.topic.type': 'enum',
              'projection.topic.values': [...layout.topics].sort().join(','),
              'storage.location.template': `${location}dt=\${dt}/topic=\${topic}/`,
            },
            prefix: `${props.dataPrefix}dt=!{timestamp:yyyy-MM-dd}/topic=!{partitionKeyFromQuery:topic}/`,
            errorPrefix: `${ERROR_PREFIX}!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/`,
          }
        : {
            keys: [
              { name: 'year', type: 'string', comment: 'arrival year (UTC)' },
              { name: 'month', type: 'string', comment: 'arrival month, 01-12' },
              { name: 'day', type: 'string', comment: 'arrival day of month, 01-31' },
              { name: 'hour', type: 'string', comment: 'arrival hour, 00-23' },
            ],
            projection: {
              'projection.year.type': 'integer',
              'projection.year.range': '2026,2099',
              'projection.month.type': 'integer',
              'projection.month.range': '1,12',
              'projection.month.digits': '2',
              'projection.day.type': 'integer',
              'projection.day.range': '1,31',
              'projection.day.digits': '2',
              'projection.hour.type': 'integer',
              'projection.hour.range': '0,23',
              'projection.hour.digits': '2',
              'storage.location.template': `${location}year=\${year}/month=\${month}/day=\${day}/hour=\${hour}/`,
            },
            prefix: `${props.dataPrefix}year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/`,
            errorPrefix: `${ERROR_PREFIX}!{firehose:error-output-type}/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/`,
          };
    const partitionNames = new Set(partitioning.keys.map((k) => k.name));
    this.table = new glue.CfnTable(this, 'Table', {
      catalogId: stack.account,
      databaseName: this.databaseName,
      tableInput: {
        name: this.tableName,
        description: props.tableDescription,
        tableType: 'EXTERNAL_TABLE',
        partitionKeys: partitioning.keys,
        parameters: {
          classification: 'parquet',
          'parquet.compression': 'SNAPPY',
          'projection.enabled': 'true',
          ...partitioning.projection,
        },
        storageDescriptor: {
          // A partition key that is also a record field (`topic`): keep the data column apart.
          columns: props.columns
            .filter((c) => !partitionNames.has(c.name))
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
            ...(props.sourceStream
              ? [
                  new iam.PolicyStatement({
                    sid: 'ReadSourceStream',
                    actions: ['kinesis:DescribeStream', 'kinesis:GetShardIterator', 'kinesis:GetRecords', 'kinesis:ListShards'],
                    resources: [props.sourceStream.streamArn],
                  }),
                  new iam.PolicyStatement({
                    sid: 'DecryptSourceStream',
                    actions: ['kms:Decrypt'],
                    resources: [key.keyArn],
                    conditions: { StringEquals: { 'kms:ViaService': `kinesis.${stack.region}.amazonaws.com` } },
                  }),
                ]
              : []),
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
      ...(props.sourceStream
        ? {
            // Records stay encrypted in the stream (its key); Firehose-side encryption applies
            // to direct puts only.
            deliveryStreamType: 'KinesisStreamAsSource',
            kinesisStreamSourceConfiguration: { kinesisStreamArn: props.sourceStream.streamArn, roleArn: role.roleArn },
          }
        : {
            deliveryStreamType: 'DirectPut',
            deliveryStreamEncryptionConfigurationInput: { keyType: 'CUSTOMER_MANAGED_CMK', keyArn: key.keyArn },
          }),
      extendedS3DestinationConfiguration: {
        bucketArn: this.bucket.bucketArn,
        roleArn: role.roleArn,
        prefix: partitioning.prefix,
        errorOutputPrefix: partitioning.errorPrefix,
        // Parquet conversion and dynamic partitioning both need buffers of at least 64 MB.
        bufferingHints: { intervalInSeconds: settings.bufferSeconds, sizeInMBs: 64 },
        compressionFormat: 'UNCOMPRESSED', // Parquet compresses its pages (Snappy)
        encryptionConfiguration: { kmsEncryptionConfig: { awskmsKeyArn: key.keyArn } },
        cloudWatchLoggingOptions: { enabled: true, logGroupName: errorLogs.logGroupName, logStreamName: errorStream.logStreamName },
        ...(layout.kind === 'day-and-topic'
          ? {
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
            }
          : {}),
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
    if (props.sourceStream) {
      Validations.of(this.deliveryStream).acknowledge({
        id: 'AwsSolutions-KDF1',
        reason:
          'Firehose-side encryption exists for direct puts only; with a Kinesis source the records stay encrypted in the ' +
          'stream (platform key) and the objects are written with the platform key (the bucket encryption config).',
      });
    }
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
