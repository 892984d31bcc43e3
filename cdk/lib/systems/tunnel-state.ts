import { Duration, type RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import type { EnvName } from '../config';
import { NAMES, resourceName } from '../naming';
import { ConsumerInbox } from '../constructs/consumer-inbox';
import { AlarmedDeadLetterQueue } from '../constructs/dead-letter-queue';

export interface TunnelStateProps {
  readonly envName: EnvName;
  readonly key: kms.IKey;
  readonly alarmTopic: sns.ITopic;
  /** The app bus, whose `HttpResponseReady` rule (in `Tunnel`) feeds the responses inbox. */
  readonly appBusName: string;
  readonly removalPolicy: RemovalPolicy;
  readonly dlqDepthThreshold?: number;
  /** Days a stored response body is kept (the caller has long had it). */
  readonly bodyRetentionDays: number;
}

/**
 * The HTTP tunnel's stateful half (`lambdas/tunnel/README.md`):
 * - `pending_requests`: one item per tunnelled request (`requestId`; TTL `expiresAt`; stream
 *   `NEW_AND_OLD_IMAGES` for the notifier);
 * - the bodies bucket: answers too large for the item (platform key, TLS only, no public
 *   access, expiring after `bodyRetentionDays`, access logs to its own log bucket);
 * - the notifier's on-failure queue (alarmed);
 * - the responses inbox: `HttpResponseReady` for consumers (audit, metering), with its DLQs.
 */
export class TunnelState extends Construct {
  readonly pendingTable: dynamodb.Table;
  readonly bodies: s3.Bucket;
  readonly notifierOnFailure: AlarmedDeadLetterQueue;
  readonly responses: ConsumerInbox;

  constructor(scope: Construct, id: string, props: TunnelStateProps) {
    super(scope, id);
    const { key, alarmTopic, removalPolicy } = props;
    const name = (...parts: string[]) => resourceName(props.envName, ...parts);
    const stack = Stack.of(this);

    this.pendingTable = new dynamodb.Table(this, 'PendingTable', {
      tableName: name(NAMES.tunnelPending),
      partitionKey: { name: 'requestId', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: key,
      timeToLiveAttribute: 'expiresAt',
      stream: dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
      removalPolicy,
    });
    Validations.of(this.pendingTable).acknowledge({
      id: 'AwsSolutions-DDB3',
      reason: 'In-flight tunnel requests only, each expiring within 15 minutes (TTL); a restored copy would hold answers nobody waits for.',
    });

    const accessLogs = new s3.Bucket(this, 'BodiesAccessLogs', {
      bucketName: `${name('tunnel-bodies-access-logs')}-${stack.account}`,
      // S3 server access logging only delivers to SSE-S3 buckets.
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
      lifecycleRules: [{ expiration: Duration.days(90) }],
      removalPolicy,
    });
    Validations.of(accessLogs).acknowledge({
      id: 'AwsSolutions-S1',
      reason: 'This is the access log bucket of the tunnel bodies bucket; logging it into itself would loop.',
    });
    this.bodies = new s3.Bucket(this, 'Bodies', {
      bucketName: `${name('tunnel-bodies')}-${stack.account}`,
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: key,
      bucketKeyEnabled: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: 'bodies/',
      lifecycleRules: [
        { id: 'expire', expiration: Duration.days(props.bodyRetentionDays), abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
      removalPolicy,
    });

    this.notifierOnFailure = new AlarmedDeadLetterQueue(this, 'NotifierOnFailure', {
      key,
      alarmTopic,
      removalPolicy,
      depthThreshold: props.dlqDepthThreshold,
      queueName: name('tunnel-notifier-on-failure'),
      holds:
        'descriptions of pending-request stream batches the tunnel notifier gave up on (retries or record age exhausted): ' +
        'the items still hold the answers until their TTL; their HttpResponseReady events were not published',
    });

    this.responses = new ConsumerInbox(this, 'Responses', {
      key,
      alarmTopic,
      removalPolicy,
      dlqDepthThreshold: props.dlqDepthThreshold,
      queueName: name(NAMES.tunnelResponses),
      busName: props.appBusName,
      ruleName: name(NAMES.tunnelResponses),
    });
  }
}
