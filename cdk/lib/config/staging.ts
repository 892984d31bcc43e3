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
  forwardFunction: { memoryMb: 512, timeoutSeconds: 10, quotaEventsPerMinute: 600, forwardFailuresAlarmThreshold: 1, killSwitch: { failureRatePercent: 50, minEvents: 50 }, signingSecretRotationDays: 30 },
  analyticsArchive: { glacierAfterDays: 30, expireAfterDays: 365, bufferSeconds: 300, freshnessAlarmSeconds: 900, accessLogRetentionDays: 90 },
  archiveRetentionDays: 30,
  sessionPipeline: {
    memoryMb: 256,
    timeoutSeconds: 10,
    compliance: { blockTerms: ['lawsuit'], flagTerms: ['refund', 'cancel my account'] },
    pointInTimeRecovery: false,
    failedExecutionsAlarmThreshold: 1,
  },
  ingest: {
    peak: { eventsPerSecond: 800, eventBytes: 600 },
    average: { eventsPerSecond: 20, eventsPerRequest: 100, writesPerEvent: 1 },
    stream: { capacity: { mode: 'provisioned', shards: 1 }, retentionHours: 24 },
    api: { throttleRatePerSec: 800, throttleBurst: 1600 },
    ingestFunction: { memoryMb: 256, timeoutSeconds: 10 },
    processor: { memoryMb: 512, timeoutSeconds: 30, batchSize: 100, batchWindowSeconds: 5, maxRecordAgeSeconds: 6 * 3600, retryAttempts: 5 },
    archive: { glacierAfterDays: 30, expireAfterDays: 365, bufferSeconds: 300, freshnessAlarmSeconds: 900, accessLogRetentionDays: 90 },
    pointInTimeRecovery: false,
    alarms: { iteratorAgeSeconds: 60, malformedRatePercent: 5, onFailureDepth: 10 },
    monthlyBudgetUsd: 150,
  },
  realtime: {
    processor: { memoryMb: 256, timeoutSeconds: 10 },
    notifier: { memoryMb: 256, timeoutSeconds: 10 },
    websocket: { throttleRatePerSec: 200, throttleBurst: 400, connectionsPerUser: 10 },
    dashboard: { memoryMb: 256, timeoutSeconds: 10, batchSize: 100, batchWindowSeconds: 1, maxRecordAgeSeconds: 300, retryAttempts: 3, iteratorAgeAlarmSeconds: 60 },
    pointInTimeRecovery: false,
    tokenSecretRotationDays: 30,
  },
  tunnel: {
    forward: { memoryMb: 256, waitSeconds: 25 },
    notifier: { memoryMb: 256, timeoutSeconds: 10, batchSize: 100, maxRecordAgeSeconds: 300, retryAttempts: 3, iteratorAgeAlarmSeconds: 30 },
    httpThrottle: { rateLimit: 200, burstLimit: 400 },
    websocket: { throttleRatePerSec: 200, throttleBurst: 400, connectionsPerAgent: 5 },
    rollout: { useEventDriven: true, canaryPercent: 50 },
    timeoutsAlarmThreshold: 50,
    tokenSecretRotationDays: 30,
  },
  delivery: {
    githubRepository: 'eventfabric/eventfabric',
    oidcProvider: 'create',
    bootstrapQualifier: 'hnb659fds',
    trafficShift: { kind: 'canary', percent: 10, minutes: 5 },
  },
  ruleTargets: { retryAttempts: 8, maxEventAgeMinutes: 6 * 60 },
};
