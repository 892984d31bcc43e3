import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as sqs from 'aws-cdk-lib/aws-sqs';

/**
 * The platform's defaults, in one visible place (as AWS Solutions Constructs keep theirs in
 * `*-defaults.ts`). Constructs take narrow props that fall back to these; environment files
 * override what differs per environment.
 */

/** What a queue's settings are made of; each field defaults as below. */
export interface QueueSettings {
  /** How long an unconsumed message stays. Default 4 days (SQS's default). */
  readonly retentionDays?: number;
  /** What happens to the queue when its stack is deleted. Default RETAIN. */
  readonly removalPolicy?: RemovalPolicy;
}

export const DEFAULT_QUEUE_RETENTION_DAYS = 4;
/** Deliveries before a consumer message moves to its DLQ. */
export const DEFAULT_MAX_RECEIVE_COUNT = 5;
/** Messages visible in a DLQ at which its alarm fires: one is already worth a look. */
export const DEFAULT_DLQ_DEPTH_THRESHOLD = 1;
/** Age of a consumer queue's oldest message at which its alarm fires. */
export const DEFAULT_CONSUMER_MAX_AGE_MINUTES = 60;

/** Retries and maximum age of EventBridge deliveries to a rule target before its DLQ. */
export interface RuleTargetDelivery {
  readonly retryAttempts: number;
  readonly maxEventAgeMinutes: number;
}

export const DEFAULT_RULE_TARGET_DELIVERY: RuleTargetDelivery = { retryAttempts: 3, maxEventAgeMinutes: 60 };

/**
 * Secure defaults for every queue of the platform: KMS encryption with the platform key,
 * TLS-only access, retention and removal from `settings`.
 */
export function secureQueueProps(key: kms.IKey, settings: QueueSettings = {}): sqs.QueueProps {
  return {
    encryption: sqs.QueueEncryption.KMS,
    encryptionMasterKey: key,
    // Reuse data keys for 5 minutes: fewer KMS calls per message, same protection.
    dataKeyReuse: Duration.minutes(5),
    enforceSSL: true,
    retentionPeriod: Duration.days(settings.retentionDays ?? DEFAULT_QUEUE_RETENTION_DAYS),
    removalPolicy: settings.removalPolicy ?? RemovalPolicy.RETAIN,
  };
}

/** Dead-letter queues keep messages as long as SQS allows, so nothing expires before triage. */
export const DLQ_RETENTION = Duration.days(14);
