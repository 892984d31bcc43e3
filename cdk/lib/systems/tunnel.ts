import type * as events from 'aws-cdk-lib/aws-events';
import { Construct } from 'constructs';
import type { EnvName } from '../config';
import { NAMES, resourceName } from '../naming';
import { type RegistryManifest, topicsPattern } from '../registry';
import { BusRuleToQueue } from '../constructs/bus-rule-to-queue';
import type { RuleTargetDelivery } from '../constructs/defaults';

/** What the tunnel publishes for other consumers. */
export const TUNNEL_RESPONSE_TOPICS = ['tunnel.response.ready'];

export interface TunnelProps {
  readonly envName: EnvName;
  readonly registry: RegistryManifest;
  readonly delivery?: RuleTargetDelivery;
  readonly appBus: events.IEventBus;
  readonly responses: { readonly queueArn: string; readonly deliveryDeadLetterQueueArn: string };
}

/**
 * The HTTP tunnel's stateless half, as far as it is built: the rule routing `HttpResponseReady`
 * (pattern from the registry) to the responses inbox. The functions, the HTTP route and the
 * agents' WebSocket API come next (`lambdas/tunnel/README.md`).
 */
export class Tunnel extends Construct {
  constructor(scope: Construct, id: string, props: TunnelProps) {
    super(scope, id);
    const name = (...parts: string[]) => resourceName(props.envName, ...parts);
    new BusRuleToQueue(this, 'ResponsesRule', {
      delivery: props.delivery,
      bus: props.appBus,
      ruleName: name(NAMES.tunnelResponses),
      description: `${TUNNEL_RESPONSE_TOPICS.join(', ')} to the tunnel responses queue`,
      eventPattern: topicsPattern(props.registry, TUNNEL_RESPONSE_TOPICS, 'app'),
      queueArn: props.responses.queueArn,
      deliveryDeadLetterQueueArn: props.responses.deliveryDeadLetterQueueArn,
    });
  }
}
