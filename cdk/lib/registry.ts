import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as events from 'aws-cdk-lib/aws-events';

/**
 * The routing manifest generated from the topic registry (`schemas/topics`) by
 * `cargo run -p eventfabric-registry --bin registry -- export`. Rule patterns come from here,
 * never from hand-typed topic lists.
 */
export const MANIFEST_PATH = path.join(__dirname, '..', 'generated', 'registry.json');

export type BusName = 'session' | 'analytics' | 'app';
export type StreamName = 'ingest';

export interface ManifestTopic {
  readonly topic: string;
  readonly version: string;
  /** The bus the topic is published to; absent for a stream topic. */
  readonly bus?: BusName;
  /** The stream the topic is written to (through the ingest API); absent for a bus topic. */
  readonly stream?: StreamName;
  readonly forwardingPolicy: 'default' | 'sampled' | 'conditional' | 'deny';
  readonly piiLevel: 'none' | 'low' | 'high';
  readonly archive: boolean;
  readonly deprecated: boolean;
  /** False for `deny` topics: the edge API never forwards them. */
  readonly forwarded: boolean;
  /** The EventBridge source of the topic's events (`nia.interface` when forwarded); absent for a stream topic. */
  readonly source?: string;
  /** The EventBridge detail type of the topic's events: its name unless the registry names another. */
  readonly detailType: string;
  /** The platform component that publishes the topic, for topics the platform emits. */
  readonly producer?: string;
  /** Whether anything reaches the bus (forwarded, or produced); no rule should match otherwise. */
  readonly published: boolean;
}

/** A column of the analytics archive's Glue table, generated from the payload schemas. */
export interface GlueColumn {
  readonly name: string;
  /** The key in the forwarded detail this column reads. */
  readonly jsonKey: string;
  readonly type: string;
  readonly comment: string;
}

export interface RegistryManifest {
  readonly source: string;
  readonly topics: ManifestTopic[];
  readonly analyticsArchiveColumns: GlueColumn[];
  readonly ingestArchiveColumns: GlueColumn[];
}

export function loadRegistry(file = MANIFEST_PATH): RegistryManifest {
  if (!fs.existsSync(file)) {
    throw new Error(`${file} is missing: run \`cargo run -p eventfabric-registry --bin registry -- export\``);
  }
  return JSON.parse(fs.readFileSync(file, 'utf8')) as RegistryManifest;
}

/** Topics that are published to `bus` (denied topics never reach a bus). */
export function forwardedTopics(registry: RegistryManifest, bus: BusName): string[] {
  return registry.topics.filter((t) => t.forwarded && t.bus === bus).map((t) => t.topic);
}

/** Forwarded topics of `bus` flagged `archive` (regulated: kept in an EventBridge Archive). */
export function archivedTopics(registry: RegistryManifest, bus: BusName): string[] {
  return registry.topics.filter((t) => t.forwarded && t.archive && t.bus === bus).map((t) => t.topic);
}

/** The (source, detail type) of every published topic of `bus` flagged `archive`. */
export function archivedKinds(registry: RegistryManifest, bus: BusName): { source: string; detailType: string }[] {
  return registry.topics
    .filter((t) => t.published && t.archive && t.bus === bus)
    .map((t) => ({ source: busSource(t), detailType: t.detailType }));
}

/** The pattern matching forwarded interface events on `bus`: every topic forwarded there. */
export function interfacePattern(registry: RegistryManifest, bus: BusName): events.EventPattern {
  const topics = forwardedTopics(registry, bus);
  if (topics.length === 0) {
    throw new Error(`no topic is forwarded to the ${bus} bus: a rule would match nothing`);
  }
  return { source: [registry.source], detailType: [...topics].sort() };
}

/**
 * The pattern matching one topic on `bus`, by its registry source and name. Refuses a topic
 * the registry does not have, does not publish, or publishes to another bus: such a rule would
 * match nothing.
 */
export function topicPattern(registry: RegistryManifest, topic: string, bus: BusName): events.EventPattern {
  const entry = registry.topics.find((t) => t.topic === topic);
  if (!entry) {
    throw new Error(`topic '${topic}' is not in the registry (schemas/topics): a rule on it would match nothing`);
  }
  if (!entry.published) {
    throw new Error(`topic '${topic}' is neither forwarded nor produced: a rule on it would match nothing`);
  }
  if (entry.bus !== bus) {
    const place = entry.bus ? `the ${entry.bus} bus` : `the ${entry.stream} stream`;
    throw new Error(`topic '${topic}' goes to ${place}, not the ${bus} bus`);
  }
  return { source: [busSource(entry)], detailType: [entry.detailType] };
}

/**
 * The pattern matching several topics of one source on `bus` (one rule for a processor's
 * topics): each is checked as {@link topicPattern} does, and they must share a source, since
 * a pattern of several sources and detail types would match their every combination.
 */
export function topicsPattern(registry: RegistryManifest, topics: readonly string[], bus: BusName): events.EventPattern {
  if (topics.length === 0) throw new Error('a rule on no topic would match nothing');
  const patterns = topics.map((t) => topicPattern(registry, t, bus));
  const sources = [...new Set(patterns.flatMap((p) => p.source ?? []))];
  if (sources.length !== 1) {
    throw new Error(
      `topics ${topics.join(', ')} come from ${sources.length} sources (${sources.join(', ')}): one rule per source, ` +
        'or the pattern would match every source with every detail type',
    );
  }
  return { source: sources, detailType: [...new Set(patterns.flatMap((p) => p.detailType ?? []))].sort() };
}

/** Topics written to `stream` (through the ingest API). */
export function streamTopics(registry: RegistryManifest, stream: StreamName): string[] {
  return registry.topics.filter((t) => t.stream === stream).map((t) => t.topic);
}

/** The EventBridge source of a bus topic; throws for a stream topic, which has none. */
export function busSource(entry: ManifestTopic): string {
  if (!entry.source) {
    throw new Error(`topic '${entry.topic}' goes to the ${entry.stream} stream: it has no EventBridge source`);
  }
  return entry.source;
}

/** A registry topic's entry; throws when it is missing. */
export function registryTopic(registry: RegistryManifest, topic: string): ManifestTopic {
  const entry = registry.topics.find((t) => t.topic === topic);
  if (!entry) throw new Error(`topic '${topic}' is not in the registry (schemas/topics)`);
  return entry;
}
