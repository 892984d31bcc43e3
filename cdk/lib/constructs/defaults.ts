import { Duration } from 'aws-cdk-lib';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { EnvConfig } from '../config';

/**
 * Secure defaults for every queue of the platform, in one visible place: KMS encryption with
 * the platform key, TLS-only access, retention from the environment config.
 */
export function secureQueueProps(key: kms.IKey, config: EnvConfig): sqs.QueueProps {
  return {
    encryption: sqs.QueueEncryption.KMS,
    encryptionMasterKey: key,
    // Reuse data keys for 5 minutes: fewer KMS calls per message, same protection.
    dataKeyReuse: Duration.minutes(5),
    enforceSSL: true,
    retentionPeriod: Duration.days(config.queues.retentionDays),
    removalPolicy: config.removalPolicy,
  };
}

/** Dead-letter queues keep messages as long as SQS allows, so nothing expires before triage. */
export const DLQ_RETENTION = Duration.days(14);
