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
  forwardFunction: { memoryMb: 512, timeoutSeconds: 10, quotaEventsPerMinute: 1200, forwardFailuresAlarmThreshold: 10, killSwitch: { failureRatePercent: 25, minEvents: 100 }, signingSecretRotationDays: 30 },
  analyticsArchive: { glacierAfterDays: 90, bufferSeconds: 300, freshnessAlarmSeconds: 900, accessLogRetentionDays: 365 },
  archiveRetentionDays: 365,
  sessionPipeline: {
    memoryMb: 256,
    timeoutSeconds: 10,
    compliance: { blockTerms: ['lawsuit', 'chargeback'], flagTerms: ['refund', 'cancel my account', 'complaint'] },
    pointInTimeRecovery: true,
    failedExecutionsAlarmThreshold: 1,
  },
  ingest: {
    // The plan's target: 4,000 events/s of ~512 bytes (600 as written) at the burst.
    peak: { eventsPerSecond: 4000, eventBytes: 600 },
    // The plan's month: 200 streams × 10 events/s, agents sending 100 events per request.
    average: { eventsPerSecond: 2000, eventsPerRequest: 100, writesPerEvent: 1 },
    stream: { capacity: { mode: 'provisioned', shards: 5 }, retentionHours: 24 },
    // The peak even if every agent sent one event per request.
    api: { throttleRatePerSec: 4000, throttleBurst: 8000 },
    ingestFunction: { memoryMb: 512, timeoutSeconds: 10 },
    processor: { memoryMb: 512, timeoutSeconds: 30, batchSize: 100, batchWindowSeconds: 5, maxRecordAgeSeconds: 24 * 3600, retryAttempts: 10 },
    archive: { glacierAfterDays: 90, bufferSeconds: 300, freshnessAlarmSeconds: 900, accessLogRetentionDays: 365 },
    pointInTimeRecovery: true,
    alarms: { iteratorAgeSeconds: 60, malformedRatePercent: 5, onFailureDepth: 10 },
    monthlyBudgetUsd: 300,
  },
  realtime: {
    processor: { memoryMb: 512, timeoutSeconds: 10 },
    notifier: { memoryMb: 512, timeoutSeconds: 15 },
    websocket: { throttleRatePerSec: 1000, throttleBurst: 2000, connectionsPerUser: 10 },
    dashboard: { memoryMb: 512, timeoutSeconds: 10, batchSize: 100, batchWindowSeconds: 1, maxRecordAgeSeconds: 300, retryAttempts: 5, iteratorAgeAlarmSeconds: 60 },
    pointInTimeRecovery: true,
    tokenSecretRotationDays: 30,
  },
  tunnel: {
    forward: { memoryMb: 512, waitSeconds: 25 },
    notifier: { memoryMb: 256, timeoutSeconds: 10, batchSize: 100, maxRecordAgeSeconds: 300, retryAttempts: 3, iteratorAgeAlarmSeconds: 30 },
    httpThrottle: { rateLimit: 1000, burstLimit: 2000 },
    websocket: { throttleRatePerSec: 1000, throttleBurst: 2000, connectionsPerAgent: 5 },
    rollout: { useEventDriven: true, canaryPercent: 5 },
    timeoutsAlarmThreshold: 100,
    tokenSecretRotationDays: 30,
  },
  delivery: {
    githubRepository: 'eventfabric/eventfabric',
    oidcProvider: 'create',
    bootstrapQualifier: 'hnb659fds',
    trafficShift: { kind: 'linear', percent: 5, everyMinutes: 2 },
  },
  ruleTargets: { retryAttempts: 185, maxEventAgeMinutes: 24 * 60 },
};
