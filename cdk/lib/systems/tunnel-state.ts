import { Duration, type RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import type { EnvName } from '../config';
import { NAMES, resourceName } from '../naming';
import { ConsumerInbox } from '../constructs/consumer-inbox';
import { AlarmedDeadLetterQueue } from '../constructs/dead-letter-queue';
import { connectionsTable, tokenSecret } from '../constructs/websocket-state';

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
  /** The rollout parameter's first value (config `tunnel.rollout`). */
  readonly rollout: { readonly useEventDriven: boolean; readonly canaryPercent: number };
}

/** The bodies bucket's name (stateless grants name it rather than import it). */
export function bodiesBucketName(envName: EnvName, account: string): string {
  return `${resourceName(envName, 'tunnel-bodies')}-${account}`;
}

/** The rollout parameter's name: `/eventfabric/<env>/tunnel/rollout`. */
export function rolloutParameterName(envName: EnvName): string {
  return `/eventfabric/${envName}/tunnel/rollout`;
}

/**
 * The HTTP tunnel's stateful half (`lambdas/tunnel/README.md`):
 * - `pending_requests`: one item per tunnelled request (`requestId`; TTL `expiresAt`; stream
 *   `NEW_AND_OLD_IMAGES` for the notifier);
 * - the bodies bucket: answers too large for the item (platform key, TLS only, no public
 *   access, expiring after `bodyRetentionDays`, access logs to its own log bucket);
 * - the agents' connections table (`connectionId`; TTL; `ByPrincipal` for an agent's
 *   connections), as the realtime one;
 * - the tunnel token secret (agents' and waiters' connect tokens), rotated by the stateless stack;
 * - the rollout parameter (`USE_EVENT_DRIVEN` and the canary percentage, read with a 30 s cache);
 * - the notifier's on-failure queue (alarmed);
 * - the responses inbox: `HttpResponseReady` for consumers (audit, metering), with its DLQs.
 */
export class TunnelState extends Construct {
  readonly pendingTable: dynamodb.Table;
  readonly bodies: s3.Bucket;
  readonly notifierOnFailure: AlarmedDeadLetterQueue;
  readonly responses: ConsumerInbox;
  readonly connectionsTable: dynamodb.Table;
  readonly tokenSecret: secretsmanager.Secret;
  readonly rollout: ssm.StringParameter;

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
      bucketName: bodiesBucketName(props.envName, stack.account),
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

    this.connectionsTable = connectionsTable(this, 'ConnectionsTable', {
      tableName: name('tunnel-connections'),
      key,
      removalPolicy,
      holds: 'Open agent and waiter WebSocket connections',
    });

    this.tokenSecret = tokenSecret(this, 'TokenSecret', {
      secretName: name('tunnel-token-secret'),
      description: 'HS256 signing secret of the tunnel WebSocket connect tokens (agents, from the token issuer; waiters, minted by the forwarding function)',
      key,
      removalPolicy,
      rotatedBy: 'the tunnel stateless stack (SigningSecretRotation, config tunnel.tokenSecretRotationDays)',
    });

    this.rollout = new ssm.StringParameter(this, 'Rollout', {
      parameterName: rolloutParameterName(props.envName),
      description:
        'HTTP tunnel rollout: {"useEventDriven": bool, "canaryPercent": 0-100}. Read by the forwarding function with a ' +
        '30 s cache; set useEventDriven false to roll back (runbook: lambdas/tunnel/README.md).',
      stringValue: JSON.stringify(props.rollout),
      tier: ssm.ParameterTier.STANDARD,
    });
  }
}
