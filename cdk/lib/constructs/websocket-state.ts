import { type RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';

/**
 * The open connections of a WebSocket API (`eventfabric_websocket::connections`):
 * `connectionId`, TTL `expiresAt` (API Gateway ends a connection within 2 hours), and
 * `ByPrincipal` (principal, connectedAt) for a principal's connections. Made in `scope` as
 * `id`, so a system that built it directly keeps its logical id.
 */
export function connectionsTable(
  scope: Construct,
  id: string,
  props: { readonly tableName: string; readonly key: kms.IKey; readonly removalPolicy: RemovalPolicy; readonly holds: string },
): dynamodb.Table {
  const table = new dynamodb.Table(scope, id, {
    tableName: props.tableName,
    partitionKey: { name: 'connectionId', type: dynamodb.AttributeType.STRING },
    billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
    encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
    encryptionKey: props.key,
    timeToLiveAttribute: 'expiresAt',
    removalPolicy: props.removalPolicy,
  });
  table.addGlobalSecondaryIndex({
    indexName: 'ByPrincipal',
    partitionKey: { name: 'principal', type: dynamodb.AttributeType.STRING },
    sortKey: { name: 'connectedAt', type: dynamodb.AttributeType.NUMBER },
  });
  Validations.of(table).acknowledge({
    id: 'AwsSolutions-DDB3',
    reason: `${props.holds} only, each ending within 2 hours (TTL); a restored copy would name connections API Gateway has already closed.`,
  });
  return table;
}

/**
 * The HS256 secret a WebSocket API's connect tokens are signed with (platform key), rotated by
 * `SigningSecretRotation` in the system's stateless stack.
 */
export function tokenSecret(
  scope: Construct,
  id: string,
  props: {
    readonly secretName: string;
    readonly description: string;
    readonly key: kms.IKey;
    readonly removalPolicy: RemovalPolicy;
    /** Where the rotation is configured, for the acknowledgement. */
    readonly rotatedBy: string;
  },
): secretsmanager.Secret {
  const secret = new secretsmanager.Secret(scope, id, {
    secretName: props.secretName,
    description: props.description,
    encryptionKey: props.key,
    generateSecretString: { passwordLength: 64, excludePunctuation: true, includeSpace: false },
    removalPolicy: props.removalPolicy,
  });
  Validations.of(secret).acknowledge({
    id: 'AwsSolutions-SMG4',
    reason: `Rotated by ${props.rotatedBy}: the schedule names the rotation function, which lives with the functions.`,
  });
  return secret;
}
