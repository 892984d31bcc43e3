import { type StackProps, Tags } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { EnvConfig } from '../config';
import { EventFabricStack } from '../logical-ids';
import type { RegistryManifest } from '../registry';
import { Ingest } from '../systems/ingest';
import { IngestState } from '../systems/ingest-state';
import type { StatefulStack } from './stateful-stack';

export interface IngestStackProps extends StackProps {
  readonly config: EnvConfig;
  readonly registry: RegistryManifest;
  /** The platform (key, alarm topic). */
  readonly platform: StatefulStack;
}

/** The ingest stream's data: the stream, state table, malformed topic, on-failure queue, archive. */
export class IngestStatefulStack extends EventFabricStack {
  readonly state: IngestState;

  constructor(scope: Construct, id: string, props: IngestStackProps) {
    super(scope, id, props);
    const { config } = props;
    const { platform } = props.platform;
    // The cost filter of the ingest budget.
    Tags.of(this).add('system', 'ingest');
    this.state = new IngestState(this, 'IngestState', {
      envName: config.name,
      settings: config.ingest,
      key: platform.key,
      alarmTopic: platform.alarmTopic,
      removalPolicy: config.removalPolicy,
      logRetention: config.logRetention,
      archiveColumns: props.registry.ingestArchiveColumns,
    });
  }
}

export interface IngestStatelessStackProps extends IngestStackProps {
  readonly state: IngestStatefulStack;
}

/** The ingest API and stream processor, their alarms, dashboard and budget. */
export class IngestStatelessStack extends EventFabricStack {
  readonly ingest: Ingest;

  constructor(scope: Construct, id: string, props: IngestStatelessStackProps) {
    super(scope, id, props);
    const { config } = props;
    const { platform } = props.platform;
    const { state } = props.state;
    Tags.of(this).add('system', 'ingest');
    this.ingest = new Ingest(this, 'Ingest', {
      envName: config.name,
      settings: config.ingest,
      logRetention: config.logRetention,
      removalPolicy: config.removalPolicy,
      key: platform.key,
      alarmTopic: platform.alarmTopic,
      streamArn: state.stream.streamArn,
      table: state.table,
      malformedTopicArn: state.malformedTopic.topicArn,
      onFailureQueueArn: state.onFailure.queue.queueArn,
    });
  }
}
