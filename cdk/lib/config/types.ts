import type { RemovalPolicy } from 'aws-cdk-lib';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';

export const ENV_NAMES = ['dev', 'staging', 'prod'] as const;
export type EnvName = (typeof ENV_NAMES)[number];

/** Everything that differs between environments. One file per environment sets it. */
export interface EnvConfig {
  readonly name: EnvName;
  /** AWS account id; undefined leaves the stacks account-agnostic (the deploying credentials decide). */
  readonly account?: string;
  readonly region: string;
  /** What happens to stateful resources (keys, queues, buses, logs) when a stack is deleted. */
  readonly removalPolicy: RemovalPolicy;
  readonly logRetention: RetentionDays;
  readonly queues: {
    /** How long an unconsumed message stays in a consumer queue. */
    readonly retentionDays: number;
    /** Deliveries before a consumer message moves to its DLQ. */
    readonly maxReceiveCount: number;
  };
  readonly alarms: {
    /** Messages visible in any DLQ at or above which its alarm fires. */
    readonly dlqDepthThreshold: number;
    /**
     * Age in minutes of the oldest message in a consumer queue at or above which its alarm
     * fires: the consumer stopped, fell behind or was never deployed. Must be well under the
     * queue's retention, or messages expire before anyone hears of them.
     */
    readonly consumerMaxAgeMinutes: number;
    /** Where alarm notifications are mailed; none means the SNS topic only. */
    readonly email?: string;
  };
  readonly edgeApi: {
    /** Steady-state requests per second across the API (stage default route throttling). */
    readonly throttleRatePerSec: number;
    readonly throttleBurst: number;
    /** Origins allowed to call the API from a browser. */
    readonly corsOrigins: string[];
  };
  readonly forwardFunction: {
    readonly memoryMb: number;
    readonly timeoutSeconds: number;
    /** Events one browser session may forward per minute (fixed window; 429 beyond). */
    readonly quotaEventsPerMinute: number;
    /** Events refused because the bus did not take them, per 5 minutes, at which the alarm fires. */
    readonly forwardFailuresAlarmThreshold: number;
    /**
     * The kill switch: when more than `failureRatePercent` of the events of 5 minutes (and at
     * least `minEvents` of them) fail to reach their bus, forwarding is switched off (README,
     * "Forwarding kill switch").
     */
    readonly killSwitch: { readonly failureRatePercent: number; readonly minEvents: number };
    /**
     * Days between rotations of the session token signing secret. Session tokens must live
     * shorter than this: a token is valid for one rotation after the one it was signed under.
     */
    readonly signingSecretRotationDays: number;
  };
  /** The analytics bus's Parquet archive (Firehose → S3). */
  readonly analyticsArchive: {
    /** Days before objects move to Glacier Instant Retrieval. */
    readonly glacierAfterDays: number;
    /** Days after which objects are deleted; none keeps them. */
    readonly expireAfterDays?: number;
    /** Firehose buffer interval (60–900 s); the buffer is also flushed at 64 MB. */
    readonly bufferSeconds: number;
    /** Age of the oldest undelivered record at which the freshness alarm fires. */
    readonly freshnessAlarmSeconds: number;
    readonly accessLogRetentionDays: number;
  };
  /** Tenants whose events the session consumer receives (`detail.tenantId`); none means all. */
  readonly sessionConsumerTenantIds?: string[];
  /** How long the EventBridge Archive keeps events of topics flagged `archive`. */
  readonly archiveRetentionDays: number;
  /** The session pipeline (Step Functions Express on `session.summary.final`). */
  readonly sessionPipeline: {
    /** Memory of each step function. */
    readonly memoryMb: number;
    readonly timeoutSeconds: number;
    /** Terms that block (`blockTerms`) or flag (`flagTerms`) a summary, matched as whole words. */
    readonly compliance: { readonly blockTerms: string[]; readonly flagTerms: string[] };
    /** Point-in-time recovery of the summaries table. */
    readonly pointInTimeRecovery: boolean;
    /** Failed executions per 5 minutes at which the alarm fires. */
    readonly failedExecutionsAlarmThreshold: number;
  };
  /** The ingest stream (HTTP ingest → Kinesis → processor → DynamoDB; Parquet archive). */
  readonly ingest: IngestConfig;
  /** Realtime app events (app bus → domain processors → WebSocket notifications). */
  readonly realtime: RealtimeConfig;
  /** The HTTP tunnel (HTTP API → agent over WebSocket → the waiting invocation is woken). */
  readonly tunnel: TunnelConfig;
  /** How this environment is deployed: the pipeline's role and each function's traffic shift. */
  readonly delivery: DeliveryConfig;
  /** Retries and maximum age for EventBridge deliveries to a rule target before its DLQ. */
  readonly ruleTargets: {
    readonly retryAttempts: number;
    readonly maxEventAgeMinutes: number;
  };
}

/** Kinesis capacity: a number of provisioned shards, or on-demand. */
export type StreamCapacity = { readonly mode: 'provisioned'; readonly shards: number } | { readonly mode: 'on-demand' };

export interface IngestConfig {
  /**
   * The load this environment must carry at its peak: synth fails when `stream.capacity`
   * cannot (README, "Ingest stream: capacity and cost"). `eventBytes` is a record as written
   * (the event plus the ingest time and request id, about 100 bytes).
   */
  readonly peak: { readonly eventsPerSecond: number; readonly eventBytes: number };
  /** The month's average load, for the cost estimate. */
  readonly average: {
    readonly eventsPerSecond: number;
    /** Events per ingest request (agents batch). */
    readonly eventsPerRequest: number;
    /** Items written per event after the processor keeps the newest per entity and batch (≤ 1). */
    readonly writesPerEvent: number;
  };
  readonly stream: { readonly capacity: StreamCapacity; readonly retentionHours: number };
  /** Stage throttling of the ingest API. */
  readonly api: { readonly throttleRatePerSec: number; readonly throttleBurst: number };
  readonly ingestFunction: { readonly memoryMb: number; readonly timeoutSeconds: number };
  readonly processor: {
    readonly memoryMb: number;
    readonly timeoutSeconds: number;
    readonly batchSize: number;
    /** How long Lambda gathers records before invoking with a partial batch. */
    readonly batchWindowSeconds: number;
    /** Records older than this go to the on-failure destination instead of being retried. */
    readonly maxRecordAgeSeconds: number;
    /** Retries of a failing batch (after bisecting) before the on-failure destination. */
    readonly retryAttempts: number;
  };
  readonly archive: EnvConfig['analyticsArchive'];
  /** Point-in-time recovery of the state table. */
  readonly pointInTimeRecovery: boolean;
  readonly alarms: {
    /** The processor's iterator age (ms behind the stream's tip) at which the lag alarm fires, in seconds. */
    readonly iteratorAgeSeconds: number;
    /** Malformed events in percent of processed ones (5 minutes) at which the alarm fires. */
    readonly malformedRatePercent: number;
    /** Batches in the processor's on-failure queue at which its alarm fires. */
    readonly onFailureDepth: number;
  };
  /** The ingest system's monthly AWS Budgets limit (USD); alerts at 80 % actual and 100 % forecast. */
  readonly monthlyBudgetUsd: number;
}

export interface RealtimeConfig {
  /** Each of the five domain processors. */
  readonly processor: { readonly memoryMb: number; readonly timeoutSeconds: number };
  /** The notifier (pushes to every connection of a user, in parallel). */
  readonly notifier: { readonly memoryMb: number; readonly timeoutSeconds: number };
  readonly websocket: {
    /** Stage throttling: messages and connects per second across the API, and the burst. */
    readonly throttleRatePerSec: number;
    readonly throttleBurst: number;
    /** Open connections one user may hold (tabs, devices); the next `$connect` gets 429. */
    readonly connectionsPerUser: number;
  };
  /**
   * Live dashboard updates from the ingest state table's stream: the function, and its event
   * source mapping (batch, window, record age and retries before the on-failure queue). A
   * dashboard wants fresh states: an old record is better dropped (the table keeps it) than late.
   */
  readonly dashboard: {
    readonly memoryMb: number;
    readonly timeoutSeconds: number;
    readonly batchSize: number;
    readonly batchWindowSeconds: number;
    readonly maxRecordAgeSeconds: number;
    readonly retryAttempts: number;
    /** Alarm when the function is this far behind the stream. */
    readonly iteratorAgeAlarmSeconds: number;
  };
  /** Point-in-time recovery of the app table (the connections table needs none: it heals in 2 hours). */
  readonly pointInTimeRecovery: boolean;
  /** Days between rotations of the connect token signing secret. */
  readonly tokenSecretRotationDays: number;
}

export interface TunnelConfig {
  /** The forwarding function: it waits for the agent, so its timeout covers `waitSeconds`. */
  readonly forward: { readonly memoryMb: number; readonly waitSeconds: number };
  /** The notifier on the pending table's stream, and its event source mapping. */
  readonly notifier: {
    readonly memoryMb: number;
    readonly timeoutSeconds: number;
    readonly batchSize: number;
    readonly maxRecordAgeSeconds: number;
    readonly retryAttempts: number;
    readonly iteratorAgeAlarmSeconds: number;
  };
  /** The public HTTP API's stage throttling. */
  readonly httpThrottle: { readonly rateLimit: number; readonly burstLimit: number };
  readonly websocket: {
    readonly throttleRatePerSec: number;
    readonly throttleBurst: number;
    /** Open connections one agent may hold; the next `$connect` gets 429. */
    readonly connectionsPerAgent: number;
  };
  /**
   * The rollout parameter's value when the stack creates it (`/eventfabric/<env>/tunnel/rollout`).
   * CloudFormation writes it only when this value changes: a value set by hand (the rollback in
   * `lambdas/tunnel/README.md`) stays until this one is changed to agree.
   */
  readonly rollout: { readonly useEventDriven: boolean; readonly canaryPercent: number };
  /** Alarm when more than this many requests in 5 minutes end in 504 (the agent did not answer). */
  readonly timeoutsAlarmThreshold: number;
  /** Days between rotations of the tunnel token signing secret. */
  readonly tokenSecretRotationDays: number;
}

/**
 * How new function code reaches traffic (CodeDeploy on each function's `live` alias). One
 * CodeDeploy config is either a canary (one step, then the rest) or linear (equal steps).
 */
export type TrafficShift =
  | { readonly kind: 'all-at-once' }
  /** `percent` of traffic for `minutes`, then all of it. */
  | { readonly kind: 'canary'; readonly percent: number; readonly minutes: number }
  /** `percent` more traffic every `everyMinutes`: the first step is the canary. */
  | { readonly kind: 'linear'; readonly percent: number; readonly everyMinutes: number };

export interface DeliveryConfig {
  /** The GitHub repository (`owner/name`) whose workflow deploys this environment. */
  readonly githubRepository: string;
  /**
   * The account's GitHub OIDC provider: `create` it in this environment's delivery stack, or
   * `import` the one another environment's stack created (an account holds one per URL).
   */
  readonly oidcProvider: 'create' | 'import';
  /** The CDK bootstrap qualifier of the account (`cdk bootstrap --qualifier`; default hnb659fds). */
  readonly bootstrapQualifier: string;
  /** Traffic shifting of every function's new version. */
  readonly trafficShift: TrafficShift;
}
