import type { IngestConfig, StreamCapacity } from './config';

/**
 * The ingest stream's capacity and cost model: what a shard carries, what an environment's
 * declared peak needs, and what a month of its average load costs. Synth refuses an environment
 * whose capacity cannot carry its peak ({@link checkCapacity}); `npx tsx scripts/ingest-cost.ts`
 * prints the estimate (README, "Ingest stream: capacity and cost").
 */

/** Kinesis limits per shard (writes). */
export const SHARD = { recordsPerSecond: 1000, bytesPerSecond: 1024 * 1024 } as const;
/** An on-demand stream's write capacity before it has scaled to a higher observed peak. */
export const ON_DEMAND_INITIAL = { recordsPerSecond: 4000, bytesPerSecond: 4 * 1024 * 1024 } as const;
/**
 * Fill at which a shard counts as full: the plan's scale-up threshold. Above it, a burst or an
 * uneven spread of partition keys throttles writes.
 */
export const MAX_UTILIZATION = 0.8;
/** An enhanced fan-out consumer reads 2 MiB/s per shard. */
export const EFO_BYTES_PER_SECOND_PER_SHARD = 2 * 1024 * 1024;

/** Shards needed to carry `peak` at {@link MAX_UTILIZATION}, by records and by bytes. */
export function requiredShards(peak: IngestConfig['peak']): { byRecords: number; byBytes: number; shards: number } {
  const byRecords = Math.ceil(peak.eventsPerSecond / (SHARD.recordsPerSecond * MAX_UTILIZATION));
  const byBytes = Math.ceil((peak.eventsPerSecond * peak.eventBytes) / (SHARD.bytesPerSecond * MAX_UTILIZATION));
  return { byRecords, byBytes, shards: Math.max(1, byRecords, byBytes) };
}

/** What `capacity` carries at {@link MAX_UTILIZATION}. */
export function carries(capacity: StreamCapacity): { recordsPerSecond: number; bytesPerSecond: number } {
  const raw = capacity.mode === 'provisioned'
    ? { recordsPerSecond: capacity.shards * SHARD.recordsPerSecond, bytesPerSecond: capacity.shards * SHARD.bytesPerSecond }
    : ON_DEMAND_INITIAL;
  return { recordsPerSecond: raw.recordsPerSecond * MAX_UTILIZATION, bytesPerSecond: raw.bytesPerSecond * MAX_UTILIZATION };
}

/** Throws, naming the numbers, when the environment's capacity cannot carry its declared peak. */
export function checkCapacity(env: string, ingest: IngestConfig): void {
  const { peak } = ingest;
  const { capacity } = ingest.stream;
  if (capacity.mode === 'provisioned' && (!Number.isInteger(capacity.shards) || capacity.shards < 1)) {
    throw new Error(`ingest (${env}): stream.capacity.shards must be a whole number ≥ 1, not ${capacity.shards}`);
  }
  const can = carries(capacity);
  const bytesPerSecond = peak.eventsPerSecond * peak.eventBytes;
  if (peak.eventsPerSecond <= can.recordsPerSecond && bytesPerSecond <= can.bytesPerSecond) return;
  const need = requiredShards(peak);
  const what = capacity.mode === 'provisioned' ? `${capacity.shards} provisioned shard(s)` : 'an on-demand stream (before it has scaled)';
  throw new Error(
    `ingest (${env}): the declared peak of ${peak.eventsPerSecond} events/s × ${peak.eventBytes} bytes ` +
      `(${(bytesPerSecond / 1024 / 1024).toFixed(2)} MiB/s) is more than ${what} carries at ${MAX_UTILIZATION * 100} % ` +
      `(${can.recordsPerSecond} records/s, ${(can.bytesPerSecond / 1024 / 1024).toFixed(2)} MiB/s): ` +
      `set stream.capacity to { mode: 'provisioned', shards: ${need.shards} } ` +
      `(${need.byRecords} by records, ${need.byBytes} by bytes) or lower the peak`,
  );
}

/**
 * List prices (USD, us-east-1, 2026; eu-west-1 is within a few percent) the estimate uses.
 * Check https://aws.amazon.com/<service>/pricing before a budget decision.
 */
export const PRICES = {
  shardHour: 0.015,
  putPayloadUnitPerMillion: 0.014, // per 25 KB unit of each record
  onDemandStreamHour: 0.04,
  onDemandIngestPerGb: 0.08,
  efoConsumerShardHour: 0.015,
  efoRetrievalPerGb: 0.013,
  onDemandEfoRetrievalPerGb: 0.05,
  lambdaGbSecond: 0.0000166667,
  lambdaRequestPerMillion: 0.2,
  httpApiRequestPerMillion: 1.0,
  dynamoWriteUnitPerMillion: 0.625,
  dynamoReadUnitPerMillion: 0.125,
  firehoseIngestPerGb: 0.029, // each record rounded up to 5 KB
  firehoseConversionPerGb: 0.018,
  s3StandardGbMonth: 0.023,
} as const;

/** Assumed run times (from the moto end-to-end and the benchmark, rounded up for AWS round trips). */
export const ASSUMED = { ingestRequestMs: 40, processorBatchMs: 80, parquetRatio: 0.15 } as const;

const HOURS_PER_MONTH = 730;
const SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600;
const GB = 1e9;

export interface CostLine {
  readonly item: string;
  readonly usd: number;
}

export interface CostEstimate {
  readonly lines: CostLine[];
  readonly totalUsd: number;
  readonly eventsPerMonth: number;
}

/**
 * A month of `ingest.average` on `ingest.stream.capacity`, by line item. `eventsPerRecord`
 * prices the alternative of packing several events into one Kinesis record (not built: see
 * the README), which divides the per-record lines.
 */
export function monthlyCost(ingest: IngestConfig, eventsPerRecord = 1): CostEstimate {
  const { average, peak, stream } = ingest;
  const events = average.eventsPerSecond * SECONDS_PER_MONTH;
  const records = events / eventsPerRecord;
  const recordBytes = peak.eventBytes * eventsPerRecord;
  const bytes = events * peak.eventBytes;
  const capacity = stream.capacity;
  const shards = capacity.mode === 'provisioned' ? capacity.shards : requiredShards({ ...peak, eventsPerSecond: average.eventsPerSecond }).shards;
  const lines: CostLine[] = [];
  if (capacity.mode === 'provisioned') {
    lines.push({ item: `Kinesis: ${shards} shard(s)`, usd: shards * HOURS_PER_MONTH * PRICES.shardHour });
    const unitsPerRecord = Math.ceil(recordBytes / (25 * 1024));
    lines.push({ item: 'Kinesis: PUT payload units', usd: (records * unitsPerRecord * PRICES.putPayloadUnitPerMillion) / 1e6 });
    lines.push({
      item: 'Kinesis: enhanced fan-out (processor)',
      usd: shards * HOURS_PER_MONTH * PRICES.efoConsumerShardHour + (bytes / GB) * PRICES.efoRetrievalPerGb,
    });
  } else {
    lines.push({ item: 'Kinesis on-demand: stream hours', usd: HOURS_PER_MONTH * PRICES.onDemandStreamHour });
    lines.push({ item: 'Kinesis on-demand: data in', usd: (bytes / GB) * PRICES.onDemandIngestPerGb });
    lines.push({
      item: 'Kinesis on-demand: enhanced fan-out (processor)',
      usd: shards * HOURS_PER_MONTH * PRICES.efoConsumerShardHour + (bytes / GB) * PRICES.onDemandEfoRetrievalPerGb,
    });
  }
  const requests = events / Math.max(1, average.eventsPerRequest);
  lines.push({ item: 'API Gateway (HTTP API) requests', usd: (requests * PRICES.httpApiRequestPerMillion) / 1e6 });
  const lambda = (invocations: number, ms: number, memoryMb: number) =>
    (invocations * PRICES.lambdaRequestPerMillion) / 1e6 + invocations * (ms / 1000) * (memoryMb / 1024) * PRICES.lambdaGbSecond;
  lines.push({ item: 'Lambda: ingest function', usd: lambda(requests, ASSUMED.ingestRequestMs, ingest.ingestFunction.memoryMb) });
  // Per shard, a batch closes at batchSize records or after the window.
  const perShardPerSecond = average.eventsPerSecond / eventsPerRecord / shards;
  const batch = Math.max(1, Math.min(ingest.processor.batchSize, perShardPerSecond * ingest.processor.batchWindowSeconds));
  lines.push({ item: 'Lambda: stream processor', usd: lambda(records / batch, ASSUMED.processorBatchMs, ingest.processor.memoryMb) });
  const writes = events * average.writesPerEvent;
  lines.push({ item: 'DynamoDB: writes (1 WRU per item ≤ 1 KB)', usd: (writes * PRICES.dynamoWriteUnitPerMillion) / 1e6 });
  lines.push({ item: 'DynamoDB: guard reads (consistent, 1 RRU)', usd: (writes * PRICES.dynamoReadUnitPerMillion) / 1e6 });
  // Firehose bills each record rounded up to 5 KB.
  const firehoseGb = (records * Math.ceil(recordBytes / 5120) * 5120) / GB;
  lines.push({ item: 'Firehose: ingestion (5 KB per record)', usd: firehoseGb * PRICES.firehoseIngestPerGb });
  lines.push({ item: 'Firehose: Parquet conversion', usd: firehoseGb * PRICES.firehoseConversionPerGb });
  lines.push({ item: 'S3: a month of Parquet', usd: (bytes / GB) * ASSUMED.parquetRatio * PRICES.s3StandardGbMonth });
  const totalUsd = lines.reduce((sum, l) => sum + l.usd, 0);
  return { lines, totalUsd, eventsPerMonth: events };
}
