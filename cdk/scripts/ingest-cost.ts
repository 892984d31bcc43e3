/**
 * Prints the ingest stream's capacity check and monthly cost estimate per environment, and the
 * plan's scenario (200 streams × 10 events/s, the plan's ~$265/month) beside them.
 *
 *   cd cdk && node --import tsx scripts/ingest-cost.ts
 */
import { ENV_NAMES, envConfig } from '../lib/config';
import { type CostEstimate, carries, monthlyCost, requiredShards } from '../lib/ingest-capacity';

const usd = (n: number) => `$${n.toFixed(2)}`;

function table(title: string, estimate: CostEstimate): void {
  console.log(`\n${title} — ${(estimate.eventsPerMonth / 1e9).toFixed(2)} billion events/month`);
  for (const line of estimate.lines) console.log(`  ${line.item.padEnd(48)} ${usd(line.usd).padStart(12)}`);
  console.log(`  ${'total'.padEnd(48)} ${usd(estimate.totalUsd).padStart(12)}`);
}

for (const name of ENV_NAMES) {
  const config = envConfig(name).ingest;
  const need = requiredShards(config.peak);
  const can = carries(config.stream.capacity);
  console.log(
    `\n${name}: peak ${config.peak.eventsPerSecond} events/s × ${config.peak.eventBytes} B needs ${need.shards} shard(s) ` +
      `(${need.byRecords} by records, ${need.byBytes} by bytes); configured ${JSON.stringify(config.stream.capacity)} ` +
      `carries ${can.recordsPerSecond} records/s at 80 %; budget ${usd(config.monthlyBudgetUsd)}/month`,
  );
  table(`${name}: average ${config.average.eventsPerSecond} events/s, ${config.average.eventsPerRequest} per request`, monthlyCost(config));
}

// prod's average is the plan's scenario (200 streams × 10 events/s; the plan estimated about
// $265/month). Two variants that change the big lines:
const prod = envConfig('prod').ingest;
table(
  'prod, if the processor wrote 1 item per 5 events (agents sampling an entity at 2/s instead of 10/s)',
  monthlyCost({ ...prod, average: { ...prod.average, writesPerEvent: 0.2 } }),
);
table('prod, with 10 events packed per Kinesis record (not built)', monthlyCost(prod, 10));
