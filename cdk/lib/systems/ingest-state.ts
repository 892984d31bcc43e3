import { Duration, type RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import type { EnvName, IngestConfig } from '../config';
import { NAMES, resourceName } from '../naming';
import type { GlueColumn } from '../registry';
import { AlarmedDeadLetterQueue } from '../constructs/dead-letter-queue';
import { ParquetArchive } from '../constructs/parquet-archive';

export interface IngestStateProps {
  readonly envName: EnvName;
  readonly settings: IngestConfig;
  readonly key: kms.IKey;
  readonly alarmTopic: sns.ITopic;
  readonly removalPolicy: RemovalPolicy;
  readonly logRetention: logs.RetentionDays;
  /** The ingest archive's columns (`ingestArchiveColumns` of the registry manifest). */
  readonly archiveColumns: GlueColumn[];
}

/** The Parquet files' prefix in the ingest archive's bucket. */
export const INGEST_DATA_PREFIX = 'ingest/';

/**
 * The stateful half of the ingest stream: the Kinesis stream (platform key, retention and
 * capacity per environment), the state table (latest event per entity; stream on for the
 * realtime system), the malformed-events topic, the processor's on-failure queue, and the
 * Parquet archive Firehose reads from the stream. The stateless half (`Ingest`) writes and
 * reads these by name.
 */
export class IngestState extends Construct {
  readonly stream: kinesis.Stream;
  readonly table: dynamodb.Table;
  readonly malformedTopic: sns.Topic;
  readonly onFailure: AlarmedDeadLetterQueue;
  readonly archive: ParquetArchive;

  constructor(scope: Construct, id: string, props: IngestStateProps) {
    super(scope, id);
    const { key, alarmTopic, removalPolicy, settings } = props;
    const name = (...parts: string[]) => resourceName(props.envName, ...parts);
    const capacity = settings.stream.capacity;

    this.stream = new kinesis.Stream(this, 'Stream', {
      streamName: name(NAMES.ingestStream),
      encryption: kinesis.StreamEncryption.KMS,
      encryptionKey: key,
      retentionPeriod: Duration.hours(settings.stream.retentionHours),
      ...(capacity.mode === 'provisioned'
        ? { streamMode: kinesis.StreamMode.PROVISIONED, shardCount: capacity.shards }
        : { streamMode: kinesis.StreamMode.ON_DEMAND }),
      removalPolicy,
    });

    Validations.of(this.stream).acknowledge({
      id: 'AwsSolutions-KDS3',
      reason:
        'Encrypted with the platform key (customer managed, rotated) like every store of the platform, not the AWS ' +
        'managed aws/kinesis key: its policy names exactly who may use it.',
    });

    this.table = new dynamodb.Table(this, 'StateTable', {
      tableName: name(NAMES.ingestState),
      partitionKey: { name: 'entity_id', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'entity_type', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: key,
      // The realtime system's live dashboard reads the changes.
      stream: dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: settings.pointInTimeRecovery },
      removalPolicy,
    });
    this.table.addGlobalSecondaryIndex({
      indexName: 'EntityTypeIndex',
      partitionKey: { name: 'entity_type', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'timestamp', type: dynamodb.AttributeType.NUMBER },
      projectionType: dynamodb.ProjectionType.ALL,
    });
    if (!settings.pointInTimeRecovery) {
      Validations.of(this.table).acknowledge({
        id: 'AwsSolutions-DDB3',
        reason:
          'Point-in-time recovery is on in prod only (config ingest.pointInTimeRecovery); elsewhere the latest states ' +
          'come back from the stream (24 h) and the Parquet archive.',
      });
    }

    this.malformedTopic = new sns.Topic(this, 'MalformedTopic', {
      topicName: name('ingest-malformed'),
      displayName: `eventfabric ${props.envName}: malformed ingest events`,
      masterKey: key,
      enforceSSL: true,
    });

    this.onFailure = new AlarmedDeadLetterQueue(this, 'ProcessorOnFailure', {
      key,
      alarmTopic,
      removalPolicy,
      depthThreshold: settings.alarms.onFailureDepth,
      queueName: name('stream-processor-on-failure'),
      holds:
        'descriptions of ingest stream batches the stream processor gave up on (retries or record age exhausted): ' +
        'shard id and sequence range. Read those records from the stream (24 h) or the archive, fix the cause, then replay them',
    });

    this.archive = new ParquetArchive(this, 'Archive', {
      key,
      alarmTopic,
      settings: settings.archive,
      envName: props.envName,
      removalPolicy,
      logRetention: props.logRetention,
      name: name(NAMES.ingestArchive),
      label: 'ingest',
      columns: props.archiveColumns,
      layout: { kind: 'hourly' },
      tableName: 'ingest_events',
      tableDescription:
        'Every event of the ingest stream, as ingested (one row per event, enriched with ingest time and request id). ' +
        'Columns generated from the topic registry.',
      dataPrefix: INGEST_DATA_PREFIX,
      sourceStream: this.stream,
    });
  }
}
