import { RemovalPolicy } from 'aws-cdk-lib';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { EnvConfig } from './types';

export const staging: EnvConfig = {
  name: 'staging',
  region: 'eu-west-1',
  removalPolicy: RemovalPolicy.DESTROY,
  logRetention: RetentionDays.ONE_MONTH,
  queues: { retentionDays: 7, maxReceiveCount: 5 },
  alarms: { dlqDepthThreshold: 1, consumerMaxAgeMinutes: 30 },
  edgeApi: { throttleRatePerSec: 200, throttleBurst: 400, corsOrigins: ['https://staging.app.example.com'] },
  forwardFunction: { memoryMb: 512, timeoutSeconds: 10, quotaEventsPerMinute: 600, forwardFailuresAlarmThreshold: 1, signingSecretRotationDays: 30 },
  analyticsArchive: { glacierAfterDays: 30, expireAfterDays: 365, bufferSeconds: 300, freshnessAlarmSeconds: 900, accessLogRetentionDays: 90 },
  archiveRetentionDays: 30,
  sessionPipeline: {
    memoryMb: 256,
    timeoutSeconds: 10,
    compliance: { blockTerms: ['lawsuit'], flagTerms: ['refund', 'cancel my account'] },
    pointInTimeRecovery: false,
    failedExecutionsAlarmThreshold: 1,
  },
  ruleTargets: { retryAttempts: 8, maxEventAgeMinutes: 6 * 60 },
};
