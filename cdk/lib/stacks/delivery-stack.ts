import type { StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { EnvConfig } from '../config';
import { EventFabricStack } from '../logical-ids';
import { DeliveryRoles } from '../systems/delivery';

export interface DeliveryStackProps extends StackProps {
  readonly config: EnvConfig;
}

/**
 * The GitHub OIDC provider and the roles the promotion workflow assumes in this environment's
 * account. Deployed once by hand before the first pipeline run (README, "Delivery"); the
 * pipeline keeps it up to date afterwards like any other stack of the environment.
 */
export class DeliveryStack extends EventFabricStack {
  readonly roles: DeliveryRoles;

  constructor(scope: Construct, id: string, props: DeliveryStackProps) {
    super(scope, id, props);
    this.roles = new DeliveryRoles(this, 'Delivery', { envName: props.config.name, settings: props.config.delivery });
  }
}
