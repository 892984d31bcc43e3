import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as sqs from 'aws-cdk-lib/aws-sqs';

/**
 * Lets EventBridge deliver to `queue` on behalf of one source only (a rule or a bus, by ARN):
 * the policy every queue that an EventBridge rule or bus writes to carries.
 */
export function allowEventBridgeDelivery(queue: sqs.IQueue, sid: string, sourceArn: string): void {
  queue.addToResourcePolicy(
    new iam.PolicyStatement({
      sid,
      principals: [new iam.ServicePrincipal('events.amazonaws.com')],
      actions: ['sqs:SendMessage'],
      resources: [queue.queueArn],
      conditions: { ArnEquals: { 'aws:SourceArn': sourceArn } },
    }),
  );
}

/**
 * Use of the platform key, only through the named AWS services (`kms:ViaService`): what a
 * function needs to read encrypted secrets or write an encrypted table, and nothing it could
 * use the key for directly. Written on the function's role, not granted on the key: a grant
 * would put the role into the key policy, and the key lives in another stack.
 */
export function keyUseThroughServices(
  sid: string,
  key: kms.IKey,
  region: string,
  services: readonly ('secretsmanager' | 'dynamodb' | 'sqs' | 'kinesis' | 'sns' | 's3')[],
): iam.PolicyStatement {
  const via = services.map((s) => `${s}.${region}.amazonaws.com`);
  return new iam.PolicyStatement({
    sid,
    actions: ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey', 'kms:DescribeKey'],
    resources: [key.keyArn],
    conditions: { StringEquals: { 'kms:ViaService': via.length === 1 ? via[0] : via } },
  });
}

/**
 * Conditions that limit events:PutEvents to these sources and detail types. Both keys are
 * multi-valued (one value per entry of the request), so the operator is the set operator
 * `ForAllValues:StringEquals` (every entry's value is one of these): a plain `StringEquals` on a
 * multi-valued key matches nothing, which the IAM check of the handlers' calls
 * (cdk/iam/check-calls.ts) found. `Null` refuses a request without the keys, which
 * `ForAllValues` alone would allow.
 */
export function putEventsConditions(sources: string[], detailTypes: string[]): Record<string, Record<string, unknown>> {
  return {
    'ForAllValues:StringEquals': { 'events:source': [...new Set(sources)], 'events:detail-type': [...new Set(detailTypes)] },
    Null: { 'events:source': 'false', 'events:detail-type': 'false' },
  };
}
