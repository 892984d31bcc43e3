import type { StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { EnvConfig } from '../config';
import { EventFabricStack } from '../logical-ids';
import type { RegistryManifest } from '../registry';
import { Tunnel } from '../systems/tunnel';
import { TunnelState } from '../systems/tunnel-state';
import type { StatefulStack } from './stateful-stack';

export interface TunnelStackProps extends StackProps {
  readonly config: EnvConfig;
  /** The platform (key, alarm topic, app bus). */
  readonly platform: StatefulStack;
}

/** The HTTP tunnel's data: pending requests and connections tables, bodies bucket, token secret, rollout parameter, notifier on-failure queue, responses inbox. */
export class TunnelStatefulStack extends EventFabricStack {
  readonly state: TunnelState;

  constructor(scope: Construct, id: string, props: TunnelStackProps) {
    super(scope, id, props);
    const { config } = props;
    const { platform } = props.platform;
    this.state = new TunnelState(this, 'TunnelState', {
      envName: config.name,
      key: platform.key,
      alarmTopic: platform.alarmTopic,
      appBusName: platform.appBus.eventBusName,
      removalPolicy: config.removalPolicy,
      dlqDepthThreshold: config.alarms.dlqDepthThreshold,
      bodyRetentionDays: 1,
      rollout: config.tunnel.rollout,
    });
  }
}

export interface TunnelStatelessStackProps extends TunnelStackProps {
  readonly registry: RegistryManifest;
  readonly state: TunnelStatefulStack;
}

/** The HTTP tunnel's functions, HTTP and WebSocket APIs, stream notifier, rule and alarms. */
export class TunnelStatelessStack extends EventFabricStack {
  readonly tunnel: Tunnel;

  constructor(scope: Construct, id: string, props: TunnelStatelessStackProps) {
    super(scope, id, props);
    const { config, registry } = props;
    const { state } = props.state;
    this.tunnel = new Tunnel(this, 'Tunnel', {
      envName: config.name,
      registry,
      settings: config.tunnel,
      logRetention: config.logRetention,
      removalPolicy: config.removalPolicy,
      delivery: config.ruleTargets,
      key: props.platform.platform.key,
      alarmTopic: props.platform.platform.alarmTopic,
      appBus: props.platform.platform.appBus,
      pendingTable: state.pendingTable,
      connectionsTable: state.connectionsTable,
      tokenSecretArn: state.tokenSecret.secretArn,
      notifierOnFailureQueueArn: state.notifierOnFailure.queue.queueArn,
      responses: {
        queueArn: state.responses.queue.queueArn,
        deliveryDeadLetterQueueArn: state.responses.deliveryDeadLetterQueue.queue.queueArn,
      },
    });
  }
}
