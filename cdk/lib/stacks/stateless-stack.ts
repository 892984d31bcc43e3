import type { StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { EnvConfig } from '../config';
import { ForwardApi } from '../systems/forward-api';
import { SigningSecretRotation } from '../systems/secret-rotation';
import { EventFabricStack } from '../logical-ids';
import type { RegistryManifest } from '../registry';
import type { StatefulStack } from './stateful-stack';

export interface StatelessStackProps extends StackProps {
  readonly config: EnvConfig;
  readonly stateful: StatefulStack;
  readonly registry: RegistryManifest;
}

/** What can be replaced at will: functions, rules and APIs. */
export class StatelessStack extends EventFabricStack {
  readonly forwardApi: ForwardApi;
  readonly signingSecretRotation: SigningSecretRotation;

  constructor(scope: Construct, id: string, props: StatelessStackProps) {
    super(scope, id, props);
    const { config, registry } = props;
    const { platform, forwarding } = props.stateful;
    const common = { envName: config.name, logRetention: config.logRetention, removalPolicy: config.removalPolicy };
    this.forwardApi = new ForwardApi(this, 'ForwardApi', {
      ...common,
      registry,
      settings: config.forwardFunction,
      edgeApi: config.edgeApi,
      key: platform.key,
      alarmTopic: platform.alarmTopic,
      sessionBus: platform.sessionBus,
      analyticsBus: platform.analyticsBus,
      sessionSecret: forwarding.sessionSecret,
      redactionSecret: forwarding.redactionSecret,
      table: forwarding.table,
      sessionConsumer: {
        queueArn: forwarding.sessionConsumer.queue.queueArn,
        deliveryDeadLetterQueueArn: forwarding.sessionConsumer.deliveryDeadLetterQueue.queue.queueArn,
        tenantIds: config.sessionConsumerTenantIds,
      },
      analyticsArchive:
        forwarding.analyticsArchive && forwarding.analyticsDeliveryDlq
          ? {
              deliveryStreamArn: forwarding.analyticsArchive.deliveryStream.attrArn,
              deliveryDeadLetterQueueArn: forwarding.analyticsDeliveryDlq.queue.queueArn,
            }
          : undefined,
      delivery: config.ruleTargets,
      killSwitchDeadLetterQueueArn: forwarding.killSwitchDlq.queue.queueArn,
    });
    this.signingSecretRotation = new SigningSecretRotation(this, 'SigningSecretRotation', {
      ...common,
      secretArn: forwarding.sessionSecret.secretArn,
      key: platform.key,
      alarmTopic: platform.alarmTopic,
      everyDays: config.forwardFunction.signingSecretRotationDays,
    });
  }
}
