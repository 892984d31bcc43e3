import { Stage, type StageProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { EnvConfig } from './config';
import { TRAFFIC_SHIFT_CONTEXT } from './constructs/rust-function';
import { resourceName } from './naming';
import type { RegistryManifest } from './registry';
import { DeliveryStack } from './stacks/delivery-stack';
import { StatefulStack } from './stacks/stateful-stack';
import { IngestStatefulStack, IngestStatelessStack } from './stacks/ingest-stacks';
import { RealtimeStatefulStack, RealtimeStatelessStack } from './stacks/realtime-stacks';
import { TunnelStatefulStack, TunnelStatelessStack } from './stacks/tunnel-stacks';
import { SessionPipelineStatefulStack, SessionPipelineStatelessStack } from './stacks/session-pipeline-stacks';
import { StatelessStack } from './stacks/stateless-stack';

export interface EventFabricStageProps extends StageProps {
  readonly config: EnvConfig;
  readonly registry: RegistryManifest;
}

/**
 * One environment of the platform: the platform and forwarding (`Stateful`, `Stateless`), then
 * a stateful and a stateless stack per further system (README, "How the CDK app is cut").
 */
export class EventFabricStage extends Stage {
  readonly stateful: StatefulStack;
  readonly stateless: StatelessStack;
  readonly sessionPipelineStateful: SessionPipelineStatefulStack;
  readonly sessionPipelineStateless: SessionPipelineStatelessStack;
  readonly ingestStateful: IngestStatefulStack;
  readonly ingestStateless: IngestStatelessStack;
  readonly realtimeStateful: RealtimeStatefulStack;
  readonly realtimeStateless: RealtimeStatelessStack;
  readonly tunnelStateful: TunnelStatefulStack;
  readonly tunnelStateless: TunnelStatelessStack;
  readonly delivery: DeliveryStack;

  constructor(scope: Construct, id: string, props: EventFabricStageProps) {
    super(scope, id, { ...props, env: { account: props.config.account, region: props.config.region } });
    const { config, registry } = props;
    // Every function's CodeDeploy traffic shift (RustFunction reads it).
    this.node.setContext(TRAFFIC_SHIFT_CONTEXT, config.delivery.trafficShift);
    const tags = { project: 'eventfabric', environment: config.name };
    this.stateful = new StatefulStack(this, 'Stateful', {
      stackName: resourceName(config.name, 'stateful'),
      description: `eventfabric ${config.name}: buses, queues, keys (stateful)`,
      terminationProtection: config.name === 'prod',
      config,
      registry,
      tags,
    });
    this.stateless = new StatelessStack(this, 'Stateless', {
      stackName: resourceName(config.name, 'stateless'),
      description: `eventfabric ${config.name}: functions, rules, APIs (stateless)`,
      config,
      stateful: this.stateful,
      registry,
      tags,
    });
    this.sessionPipelineStateful = new SessionPipelineStatefulStack(this, 'SessionPipelineStateful', {
      stackName: resourceName(config.name, 'session-pipeline-stateful'),
      description: `eventfabric ${config.name}: session pipeline summaries table and queues (stateful)`,
      terminationProtection: config.name === 'prod',
      config,
      platform: this.stateful,
      tags,
    });
    this.sessionPipelineStateless = new SessionPipelineStatelessStack(this, 'SessionPipelineStateless', {
      stackName: resourceName(config.name, 'session-pipeline-stateless'),
      description: `eventfabric ${config.name}: session pipeline functions, state machine and rules (stateless)`,
      config,
      platform: this.stateful,
      state: this.sessionPipelineStateful,
      registry,
      tags,
    });
    this.ingestStateful = new IngestStatefulStack(this, 'IngestStateful', {
      stackName: resourceName(config.name, 'ingest-stateful'),
      description: `eventfabric ${config.name}: ingest stream, state table, malformed topic and Parquet archive (stateful)`,
      terminationProtection: config.name === 'prod',
      config,
      registry,
      platform: this.stateful,
      tags,
    });
    this.ingestStateless = new IngestStatelessStack(this, 'IngestStateless', {
      stackName: resourceName(config.name, 'ingest-stateless'),
      description: `eventfabric ${config.name}: ingest API, stream processor, alarms, dashboard and budget (stateless)`,
      config,
      registry,
      platform: this.stateful,
      state: this.ingestStateful,
      tags,
    });
    this.realtimeStateful = new RealtimeStatefulStack(this, 'RealtimeStateful', {
      stackName: resourceName(config.name, 'realtime-stateful'),
      description: `eventfabric ${config.name}: realtime app table, connections table, token secret and queues (stateful)`,
      terminationProtection: config.name === 'prod',
      config,
      platform: this.stateful,
      tags,
    });
    this.realtimeStateless = new RealtimeStatelessStack(this, 'RealtimeStateless', {
      stackName: resourceName(config.name, 'realtime-stateless'),
      description: `eventfabric ${config.name}: realtime processors, notifier, live dashboards, WebSocket API, rules and alarms (stateless)`,
      config,
      registry,
      platform: this.stateful,
      state: this.realtimeStateful,
      ingest: this.ingestStateful,
      tags,
    });
    this.tunnelStateful = new TunnelStatefulStack(this, 'TunnelStateful', {
      stackName: resourceName(config.name, 'tunnel-stateful'),
      description: `eventfabric ${config.name}: HTTP tunnel pending requests and connections tables, bodies bucket, token secret, rollout parameter and queues (stateful)`,
      terminationProtection: config.name === 'prod',
      config,
      platform: this.stateful,
      tags,
    });
    this.tunnelStateless = new TunnelStatelessStack(this, 'TunnelStateless', {
      stackName: resourceName(config.name, 'tunnel-stateless'),
      description: `eventfabric ${config.name}: HTTP tunnel functions, HTTP and WebSocket APIs, notifier, rule and alarms (stateless)`,
      config,
      registry,
      platform: this.stateful,
      state: this.tunnelStateful,
      tags,
    });
    this.delivery = new DeliveryStack(this, 'Delivery', {
      stackName: resourceName(config.name, 'delivery'),
      description: `eventfabric ${config.name}: the GitHub OIDC provider and the roles the promotion workflow assumes`,
      terminationProtection: config.name === 'prod',
      config,
      tags,
    });
  }
}
