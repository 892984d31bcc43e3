import { RemovalPolicy } from 'aws-cdk-lib';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { EnvConfig } from './types';

export const prod: EnvConfig = {
  name: 'prod',
  region: 'eu-west-1',
  // Keys, queues and buses outlive a deleted stack in prod.
  removalPolicy: RemovalPolicy.RETAIN,
  logRetention: RetentionDays.THREE_MONTHS,
  queues: { retentionDays: 14, maxReceiveCount: 5 },
  alarms: { dlqDepthThreshold: 1, consumerMaxAgeMinutes: 15 },
  edgeApi: { throttleRatePerSec: 2000, throttleBurst: 4000, corsOrigins: ['https://app.example.com'] },
  forwardFunction: { memoryMb: 512, timeoutSeconds: 10, quotaEventsPerMinute: 1200, forwardFailuresAlarmThreshold: 10, signingSecretRotationDays: 30 },
  analyticsArchive: { glacierAfterDays: 90, bufferSeconds: 300, freshnessAlarmSeconds: 900, accessLogRetentionDays: 365 },
  archiveRetentionDays: 365,
  sessionPipeline: {
    memoryMb: 256,
    timeoutSeconds: 10,
    compliance: { blockTerms: ['lawsuit', 'chargeback'], flagTerms: ['refund', 'cancel my account', 'complaint'] },
    pointInTimeRecovery: true,
    failedExecutionsAlarmThreshold: 1,
  },
  ruleTargets: { retryAttempts: 185, maxEventAgeMinutes: 24 * 60 },
};
