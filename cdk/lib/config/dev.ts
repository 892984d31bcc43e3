import { RemovalPolicy } from 'aws-cdk-lib';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { EnvConfig } from './types';

export const dev: EnvConfig = {
  name: 'dev',
  region: 'eu-west-1',
  removalPolicy: RemovalPolicy.DESTROY,
  logRetention: RetentionDays.ONE_WEEK,
  queues: { retentionDays: 4, maxReceiveCount: 3 },
  alarms: { dlqDepthThreshold: 1, consumerMaxAgeMinutes: 60 },
  edgeApi: { throttleRatePerSec: 50, throttleBurst: 100, corsOrigins: ['http://localhost:3000'] },
  forwardFunction: { memoryMb: 256, timeoutSeconds: 10, quotaEventsPerMinute: 600, forwardFailuresAlarmThreshold: 1, killSwitch: { failureRatePercent: 50, minEvents: 20 }, signingSecretRotationDays: 30 },
  analyticsArchive: { glacierAfterDays: 30, expireAfterDays: 90, bufferSeconds: 60, freshnessAlarmSeconds: 900, accessLogRetentionDays: 30 },
  archiveRetentionDays: 7,
  sessionPipeline: {
    memoryMb: 256,
    timeoutSeconds: 10,
    compliance: { blockTerms: ['lawsuit'], flagTerms: ['refund', 'cancel my account'] },
    pointInTimeRecovery: false,
    failedExecutionsAlarmThreshold: 1,
  },
  ingest: {
    peak: { eventsPerSecond: 100, eventBytes: 600 },
    average: { eventsPerSecond: 5, eventsPerRequest: 50, writesPerEvent: 1 },
    stream: { capacity: { mode: 'provisioned', shards: 1 }, retentionHours: 24 },
    api: { throttleRatePerSec: 100, throttleBurst: 200 },
    ingestFunction: { memoryMb: 256, timeoutSeconds: 10 },
    processor: { memoryMb: 256, timeoutSeconds: 30, batchSize: 100, batchWindowSeconds: 5, maxRecordAgeSeconds: 3600, retryAttempts: 3 },
    archive: { glacierAfterDays: 30, expireAfterDays: 90, bufferSeconds: 300, freshnessAlarmSeconds: 900, accessLogRetentionDays: 30 },
    pointInTimeRecovery: false,
    alarms: { iteratorAgeSeconds: 60, malformedRatePercent: 5, onFailureDepth: 10 },
    monthlyBudgetUsd: 50,
  },
  realtime: {
    processor: { memoryMb: 256, timeoutSeconds: 10 },
    notifier: { memoryMb: 256, timeoutSeconds: 10 },
    websocket: { throttleRatePerSec: 50, throttleBurst: 100, connectionsPerUser: 10 },
    dashboard: { memoryMb: 256, timeoutSeconds: 10, batchSize: 100, batchWindowSeconds: 1, maxRecordAgeSeconds: 300, retryAttempts: 3, iteratorAgeAlarmSeconds: 60 },
    pointInTimeRecovery: false,
    tokenSecretRotationDays: 30,
  },
  tunnel: {
    forward: { memoryMb: 256, waitSeconds: 25 },
    notifier: { memoryMb: 256, timeoutSeconds: 10, batchSize: 100, maxRecordAgeSeconds: 300, retryAttempts: 3, iteratorAgeAlarmSeconds: 30 },
    httpThrottle: { rateLimit: 50, burstLimit: 100 },
    websocket: { throttleRatePerSec: 50, throttleBurst: 100, connectionsPerAgent: 5 },
    rollout: { useEventDriven: true, canaryPercent: 100 },
    timeoutsAlarmThreshold: 20,
    tokenSecretRotationDays: 30,
  },
  delivery: {
    githubRepository: 'eventfabric/eventfabric',
    oidcProvider: 'create',
    bootstrapQualifier: 'hnb659fds',
    trafficShift: { kind: 'all-at-once' },
  },
  ruleTargets: { retryAttempts: 3, maxEventAgeMinutes: 60 },
};
