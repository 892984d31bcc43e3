import { CfnOutput, Duration, type RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as budgets from 'aws-cdk-lib/aws-budgets';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sources from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { EnvName, IngestConfig } from '../config';
import { checkCapacity } from '../ingest-capacity';
import { METRICS_NAMESPACE, NAMES, resourceName } from '../naming';
import { alarmToTopic } from '../constructs/alarms';
import { loggedHttpApi } from '../constructs/http-api';
import { keyUseThroughServices } from '../constructs/policies';
import { RustFunction } from '../constructs/rust-function';

export interface IngestProps {
  readonly envName: EnvName;
  readonly settings: IngestConfig;
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
  /** From the platform. */
  readonly key: kms.IKey;
  readonly alarmTopic: sns.ITopic;
  /** From `IngestState`. */
  readonly streamArn: string;
  readonly table: dynamodb.ITable;
  readonly malformedTopicArn: string;
  readonly onFailureQueueArn: string;
}

/**
 * The ingest stream, stateless half: `POST /api/ingest` (IAM-authorized HTTP API) → the
 * `ingest-api` function → the stream; the `stream-processor` function on an enhanced fan-out
 * consumer (batch, window, bisect, bounded retries and age, partial batch responses, on-failure
 * queue); their alarms, a dashboard, and the system's monthly budget. Refuses to synthesize
 * when the environment's stream capacity cannot carry its declared peak.
 */
export class Ingest extends Construct {
  readonly ingestFunction: RustFunction;
  readonly processor: RustFunction;
  readonly api: apigw.HttpApi;
  readonly consumer: kinesis.StreamConsumer;
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: IngestProps) {
    super(scope, id);
    const { settings, key } = props;
    checkCapacity(props.envName, settings);
    const name = (...parts: string[]) => resourceName(props.envName, ...parts);
    const stack = Stack.of(this);
    const region = stack.region;
    // Without its key: a grant on it would allow kms:Decrypt directly; the roles' platform-key
    // statements allow it through Kinesis only.
    const stream = kinesis.Stream.fromStreamArn(this, 'Stream', props.streamArn);

    // --- ingest function and API -------------------------------------------------------
    this.ingestFunction = new RustFunction(this, 'IngestFunction', {
      binary: 'ingest-api',
      crateDir: 'ingest_api',
      functionName: name('ingest-api'),
      description: 'POST /api/ingest: check machine events and write them to the ingest stream',
      memoryMb: settings.ingestFunction.memoryMb,
      timeout: Duration.seconds(settings.ingestFunction.timeoutSeconds),
      environment: { STREAM_NAME: stream.streamName, METRICS_NAMESPACE },
      logRetention: props.logRetention,
      removalPolicy: props.removalPolicy,
    });
    const ingestFn = this.ingestFunction.function;
    ingestFn.addToRolePolicy(
      new iam.PolicyStatement({ sid: 'WriteIngestStream', actions: ['kinesis:PutRecords'], resources: [props.streamArn] }),
    );
    ingestFn.addToRolePolicy(keyUseThroughServices('UsePlatformKeyThroughKinesis', key, region, ['kinesis']));
    Validations.of(ingestFn).acknowledge({
      id: 'Serverless-LambdaDLQ',
      reason: 'Invoked synchronously by API Gateway only; the caller gets every event it must resend (503/500), there is no async event to dead-letter.',
    });
    this.api = this.ingestApi(props, this.ingestFunction.alias);

    // --- stream processor ----------------------------------------------------------------
    this.processor = new RustFunction(this, 'Processor', {
      binary: 'stream-processor',
      crateDir: 'stream_processor',
      functionName: name('stream-processor'),
      description: 'Ingest stream → registry validation → latest state per entity in DynamoDB; malformed events to SNS',
      memoryMb: settings.processor.memoryMb,
      timeout: Duration.seconds(settings.processor.timeoutSeconds),
      environment: {
        TABLE_NAME: props.table.tableName,
        MALFORMED_TOPIC_ARN: props.malformedTopicArn,
        METRICS_NAMESPACE,
      },
      logRetention: props.logRetention,
      removalPolicy: props.removalPolicy,
    });
    const processorFn = this.processor.function;
    processorFn.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'ReadAndWriteStates',
        actions: ['dynamodb:BatchGetItem', 'dynamodb:BatchWriteItem'],
        resources: [props.table.tableArn],
      }),
    );
    processorFn.addToRolePolicy(
      new iam.PolicyStatement({ sid: 'ReportMalformed', actions: ['sns:Publish'], resources: [props.malformedTopicArn] }),
    );
    processorFn.addToRolePolicy(
      keyUseThroughServices('UsePlatformKeyThroughStateStreamTopicQueue', key, region, ['dynamodb', 'kinesis', 'sns', 'sqs']),
    );

    this.consumer = new kinesis.StreamConsumer(this, 'ProcessorConsumer', {
      streamConsumerName: name('stream-processor'),
      stream,
    });
    // Without its key: `SqsDlq` would grant kms:*DataKey* and ReEncrypt* on it; the role's
    // platform-key statement (through sqs) is narrower.
    const onFailure = sqs.Queue.fromQueueArn(this, 'OnFailureQueue', props.onFailureQueueArn);
    processorFn.addEventSource(
      new sources.KinesisConsumerEventSource(this.consumer, {
        startingPosition: lambda.StartingPosition.TRIM_HORIZON,
        batchSize: settings.processor.batchSize,
        maxBatchingWindow: Duration.seconds(settings.processor.batchWindowSeconds),
        reportBatchItemFailures: true,
        bisectBatchOnError: true,
        maxRecordAge: Duration.seconds(settings.processor.maxRecordAgeSeconds),
        retryAttempts: settings.processor.retryAttempts,
        // One batch per shard at a time: the processor's guard relies on it (crate README).
        parallelizationFactor: 1,
        onFailure: new sources.SqsDlq(onFailure),
      }),
    );
    // The mapping invokes the live alias (CodeDeploy shifts it). It stays a child of the
    // function: a mapping created anew would start again at the stream's trim horizon.
    const mapping = processorFn.node.children.find((c) => c instanceof lambda.EventSourceMapping) as lambda.EventSourceMapping;
    (mapping.node.defaultChild as lambda.CfnEventSourceMapping).functionName = this.processor.alias.functionArn;

    Validations.of(processorFn).acknowledge({
      id: 'Serverless-LambdaDLQ',
      reason:
        'Invoked by a Kinesis event source mapping, not asynchronously: failed batches go to the mapping\'s on-failure ' +
        'destination (the alarmed stream-processor-on-failure queue), which is where a DLQ would be.',
    });

    this.alarms(props);
    this.dashboard = this.makeDashboard(props);
    this.budget(props);
  }

  /** The machine-facing HTTP API: IAM (SigV4) on the route, throttled stage, JSON access logs. */
  private ingestApi(props: IngestProps, fn: lambda.IFunction): apigw.HttpApi {
    const name = (...parts: string[]) => resourceName(props.envName, ...parts);
    const api = loggedHttpApi(this, 'Api', {
      apiName: name('ingest'),
      description: 'Machine ingest of metric events into the ingest stream (SigV4-signed requests)',
      throttle: { rateLimit: props.settings.api.throttleRatePerSec, burstLimit: props.settings.api.throttleBurst },
      logRetention: props.logRetention,
      removalPolicy: props.removalPolicy,
      // Who signed the request (IAM authorization).
      extraLogFields: { caller: '$context.identity.userArn' },
    });
    api.addRoutes({
      path: '/api/ingest',
      methods: [apigw.HttpMethod.POST],
      authorizer: new HttpIamAuthorizer(),
      integration: new HttpLambdaIntegration('IngestIntegration', fn, {
        payloadFormatVersion: apigw.PayloadFormatVersion.VERSION_2_0,
      }),
    });
    new CfnOutput(this, 'IngestEndpoint', {
      value: `${api.apiEndpoint}/api/ingest`,
      description: 'POST machine events here, signed with SigV4 (service execute-api) by a principal allowed execute-api:Invoke on the route',
    });
    return api;
  }

  private metric(fn: string, metricName: string, statistic: string = cloudwatch.Stats.SUM): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: METRICS_NAMESPACE,
      metricName,
      dimensionsMap: { function: fn },
      statistic,
      period: Duration.minutes(5),
    });
  }

  private malformedRate(): cloudwatch.MathExpression {
    return new cloudwatch.MathExpression({
      label: 'malformed %',
      expression: 'IF(records > 0, 100 * malformed / records, 0)',
      usingMetrics: {
        malformed: this.metric('stream-processor', 'ProcessorMalformed'),
        records: this.metric('stream-processor', 'ProcessorRecords'),
      },
      period: Duration.minutes(5),
    });
  }

  private alarms(props: IngestProps): void {
    const name = (...parts: string[]) => resourceName(props.envName, ...parts);
    const { alarms } = props.settings;
    const streamName = name(NAMES.ingestStream);
    alarmToTopic(
      this,
      'ProcessorLagAlarm',
      this.processor.function.metric('IteratorAge', { statistic: 'Maximum', period: Duration.minutes(1) }),
      props.alarmTopic,
      {
        alarmName: name('stream-processor-lag'),
        alarmDescription: `The stream processor is more than ${alarms.iteratorAgeSeconds} s behind the ingest stream (IteratorAge): it is failing, throttled or too slow for the load. Dashboards show stale states.`,
        threshold: alarms.iteratorAgeSeconds * 1000,
        evaluationPeriods: 3,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      },
    );
    alarmToTopic(
      this,
      'ArchiveLagAlarm',
      new cloudwatch.Metric({
        namespace: 'AWS/Kinesis',
        metricName: 'GetRecords.IteratorAgeMilliseconds',
        dimensionsMap: { StreamName: streamName },
        statistic: 'Maximum',
        period: Duration.minutes(1),
      }),
      props.alarmTopic,
      {
        alarmName: name('ingest-archive-lag'),
        alarmDescription: `Firehose (the Parquet archive) reads the ingest stream more than ${alarms.iteratorAgeSeconds} s behind: records older than the 24 h retention would be lost to the archive.`,
        threshold: alarms.iteratorAgeSeconds * 1000,
        evaluationPeriods: 3,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      },
    );
    alarmToTopic(
      this,
      'WriteThrottleAlarm',
      new cloudwatch.Metric({
        namespace: 'AWS/Kinesis',
        metricName: 'WriteProvisionedThroughputExceeded',
        dimensionsMap: { StreamName: streamName },
        statistic: 'Sum',
        period: Duration.minutes(1),
      }),
      props.alarmTopic,
      {
        alarmName: name('ingest-write-throttled'),
        alarmDescription:
          'The ingest stream throttled writes for 3 minutes in a row: callers are getting 503s. Raise stream.capacity (README, "Ingest stream: capacity and cost").',
        threshold: 1,
        evaluationPeriods: 3,
      },
    );
    // Business alarms that also roll a deployment of their function back (CodeDeploy).
    const malformedRate = alarmToTopic(this, 'MalformedRateAlarm', this.malformedRate(), props.alarmTopic, {
      alarmName: name('ingest-malformed-rate'),
      alarmDescription: `More than ${alarms.malformedRatePercent} % of processed ingest events were malformed over 5 minutes (the plan expects < 1 %): an agent sends a broken shape. The reports are on the malformed topic.`,
      threshold: alarms.malformedRatePercent,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    });
    const unwritten = alarmToTopic(this, 'UnwrittenAlarm', this.metric('ingest-api', 'IngestEventsUnwritten'), props.alarmTopic, {
      alarmName: name('ingest-unwritten'),
      alarmDescription: 'The ingest API answered 503/500 for events the stream did not take (throttling or a refused call); callers must resend them.',
      threshold: 1,
    });
    this.processor.addRollbackAlarm(malformedRate);
    this.ingestFunction.addRollbackAlarm(unwritten);
    alarmToTopic(this, 'ProcessorErrorsAlarm', this.processor.function.metricErrors({ period: Duration.minutes(5) }), props.alarmTopic, {
      alarmName: name('stream-processor-errors'),
      alarmDescription: 'The stream processor failed invocations (crashes, timeouts): its batches are retried, bisected, then sent to the on-failure queue.',
      threshold: 1,
    });
  }

  private makeDashboard(props: IngestProps): cloudwatch.Dashboard {
    const name = (...parts: string[]) => resourceName(props.envName, ...parts);
    const perMinute = (fn: string, metricName: string, label: string) =>
      this.metric(fn, metricName).with({ period: Duration.minutes(1), label });
    const kinesisMetric = (metricName: string, statistic: string, label: string) =>
      new cloudwatch.Metric({
        namespace: 'AWS/Kinesis',
        metricName,
        dimensionsMap: { StreamName: name(NAMES.ingestStream) },
        statistic,
        period: Duration.minutes(1),
        label,
      });
    const processor = this.processor.function;
    const dashboard = new cloudwatch.Dashboard(this, 'Dashboard', { dashboardName: name('ingest') });
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Ingest rate (events/min)',
        left: [
          perMinute('ingest-api', 'IngestEventsAccepted', 'accepted'),
          perMinute('ingest-api', 'IngestEventsRejected', 'rejected at the API'),
          perMinute('ingest-api', 'IngestEventsUnwritten', 'unwritten (503/500)'),
        ],
        right: [kinesisMetric('WriteProvisionedThroughputExceeded', 'Sum', 'stream write throttles')],
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: 'Validation error rate (%)',
        left: [this.malformedRate()],
        leftAnnotations: [{ value: props.settings.alarms.malformedRatePercent, label: 'alarm' }],
        width: 12,
      }),
    );
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Lag (ms behind the stream)',
        left: [
          processor.metric('IteratorAge', { statistic: 'Maximum', period: Duration.minutes(1), label: 'processor' }),
          kinesisMetric('GetRecords.IteratorAgeMilliseconds', 'Maximum', 'archive (Firehose)'),
        ],
        leftAnnotations: [{ value: props.settings.alarms.iteratorAgeSeconds * 1000, label: 'alarm' }],
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: 'Processor duration (ms) and batch size (records)',
        left: [
          processor.metricDuration({ statistic: 'p50', period: Duration.minutes(1), label: 'duration p50' }),
          processor.metricDuration({ statistic: 'p99', period: Duration.minutes(1), label: 'duration p99' }),
        ],
        right: [
          this.metric('stream-processor', 'ProcessorBatchSize', 'Average').with({ period: Duration.minutes(1), label: 'batch size (avg)' }),
          this.metric('stream-processor', 'ProcessorBatchSize', 'Maximum').with({ period: Duration.minutes(1), label: 'batch size (max)' }),
        ],
        width: 12,
      }),
    );
    return dashboard;
  }

  /** The ingest system's monthly budget: alerts to the alarm topic at 80 % actual and 100 % forecast. */
  private budget(props: IngestProps): void {
    const notify = (notificationType: string, threshold: number) => ({
      notification: { notificationType, comparisonOperator: 'GREATER_THAN', threshold, thresholdType: 'PERCENTAGE' },
      subscribers: [{ subscriptionType: 'SNS', address: props.alarmTopic.topicArn }],
    });
    new budgets.CfnBudget(this, 'Budget', {
      budget: {
        budgetName: resourceName(props.envName, 'ingest'),
        budgetType: 'COST',
        timeUnit: 'MONTHLY',
        budgetLimit: { amount: props.settings.monthlyBudgetUsd, unit: 'USD' },
        // Resources of the ingest stacks carry the tag `system: ingest` (activate it once as a
        // cost allocation tag: README, "Ingest stream").
        costFilters: { TagKeyValue: ['user:system$ingest'] },
      },
      notificationsWithSubscribers: [notify('ACTUAL', 80), notify('FORECASTED', 100)],
    });
  }
}
