import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
// asl-validator is CommonJS without type declarations.
const aslValidator = require('asl-validator') as (definition: unknown) => { isValid: boolean; errors: unknown[] };
import { buildApp } from '../lib/app';
import { SESSION_PIPELINE_DEFINITION, STEPS } from '../lib/systems/session-pipeline';

const cdkContext = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'cdk.json'), 'utf8')).context;

function synth(env: string) {
  const app = new App({ context: { ...cdkContext, env, 'aws:cdk:bundling-stacks': [] } });
  const { stage } = buildApp(app);
  return {
    stateful: Template.fromStack(stage.sessionPipelineStateful),
    stateless: Template.fromStack(stage.sessionPipelineStateless),
  };
}

const dev = synth('dev');
const prod = synth('prod');

type Json = Record<string, any>;

function only(template: Template, type: string): [string, Json] {
  const found = Object.entries(template.findResources(type));
  assert.equal(found.length, 1, type);
  return found[0];
}

/** Every `Resource` of every Task state, however deeply nested (Parallel, Map). */
function taskResources(states: Json): string[] {
  return Object.values(states).flatMap((s: Json) => [
    ...(s.Type === 'Task' ? [s.Resource as string] : []),
    ...(s.Branches ?? []).flatMap((b: Json) => taskResources(b.States)),
    ...(s.ItemProcessor ? taskResources(s.ItemProcessor.States) : []),
  ]);
}

describe('session pipeline definition', () => {
  const definition = JSON.parse(fs.readFileSync(SESSION_PIPELINE_DEFINITION, 'utf8'));

  test('is valid Amazon States Language (asl-validator), before and after substitution', () => {
    const before = aslValidator(definition);
    assert.deepEqual(before.errors, []);
    const text = fs
      .readFileSync(SESSION_PIPELINE_DEFINITION, 'utf8')
      .replace(/\$\{(\w+)FunctionArn\}/g, (_, step) => `arn:aws:lambda:eu-west-1:123456789012:function:x-${step}`)
      .replace(/\$\{(\w+)\}/g, 'value');
    const after = aslValidator(JSON.parse(text));
    assert.equal(after.isValid, true, JSON.stringify(after.errors));
  });

  test('runs the four steps in order, each retried on transient errors and caught into the failure path', () => {
    const states = definition.States;
    const order: string[] = [];
    for (let s = definition.StartAt; states[s].Type === 'Task' && !s.endsWith('failure'); s = states[s].Next) {
      order.push(s);
      assert.ok(
        states[s].Retry.some((r: Json) => r.ErrorEquals.includes('Lambda.ServiceException')),
        `${s} retries Lambda service errors`,
      );
      assert.deepEqual(states[s].Catch.map((c: Json) => c.ErrorEquals), [['States.ALL']], `${s} catches everything else`);
      assert.equal(states[states[s].Catch[0].Next].Next, 'Publish failure');
    }
    assert.deepEqual(order, ['Summary', 'Sentiment', 'Compliance', 'Persistence']);
    assert.ok(states.Persistence.Retry.some((r: Json) => r.ErrorEquals.includes('StoreUnavailable')));
    assert.equal(states['Publish failure'].Resource, 'arn:aws:states:::events:putEvents', 'native integration, no Lambda');
    assert.equal(states[states['Publish failure'].Next].Type, 'Fail');
  });
});

describe('session pipeline state machine', () => {
  const [, machine] = only(dev.stateless, 'AWS::StepFunctions::StateMachine');

  test('is Express, traced, logging every event without execution data', () => {
    assert.equal(machine.Properties.StateMachineType, 'EXPRESS');
    assert.deepEqual(machine.Properties.TracingConfiguration, { Enabled: true });
    assert.equal(machine.Properties.LoggingConfiguration.Level, 'ALL');
    assert.equal(machine.Properties.LoggingConfiguration.IncludeExecutionData, false);
  });

  test('may invoke exactly the functions its tasks name, and nothing more', () => {
    const definition = JSON.parse(machine.Properties.DefinitionString);
    const substitutions: Json = machine.Properties.DefinitionSubstitutions;
    const invoked = taskResources(definition.States)
      .filter((r) => r.startsWith('${'))
      .map((r) => substitutions[r.slice(2, -1)]);
    // Each task invokes a function's live alias (CodeDeploy shifts it).
    const aliases = dev.stateless.findResources('AWS::Lambda::Alias');
    const invokedIds = invoked.map((arn: Json) => arn.Ref).sort();
    assert.equal(invokedIds.length, STEPS.length);
    assert.ok(
      invokedIds.every((id: string) => aliases[id]?.Properties.Name === 'live'),
      'every task resource is the live alias of a function of this stack',
    );

    const roleId = machine.Properties.RoleArn['Fn::GetAtt'][0];
    const granted = Object.values(dev.stateless.findResources('AWS::IAM::Policy'))
      .filter((p) => JSON.stringify(p.Properties.Roles).includes(`"Ref":"${roleId}"`))
      .flatMap((p) => p.Properties.PolicyDocument.Statement as Json[]);
    const invoke = granted.filter((s) => [s.Action].flat().some((a: string) => a.startsWith('lambda:')));
    assert.equal(invoke.length, 1, 'one statement grants Lambda actions');
    assert.deepEqual(invoke[0].Action, 'lambda:InvokeFunction');
    const grantedIds = [invoke[0].Resource]
      .flat()
      .map((r: Json) => r.Ref)
      .sort();
    assert.deepEqual(grantedIds, invokedIds, 'granted on exactly the invoked aliases (no other versions, no wildcards)');
    // Beyond the steps: the failure event on the session bus, and CDK's log delivery and X-Ray.
    const others = granted.filter((s) => !invoke.includes(s)).flatMap((s) => [s.Action].flat());
    assert.deepEqual(
      [...new Set(others)].sort(),
      [
        'events:PutEvents',
        'logs:CreateLogDelivery',
        'logs:DeleteLogDelivery',
        'logs:DescribeLogGroups',
        'logs:DescribeResourcePolicies',
        'logs:GetLogDelivery',
        'logs:ListLogDeliveries',
        'logs:PutResourcePolicy',
        'logs:UpdateLogDelivery',
        'xray:GetSamplingRules',
        'xray:GetSamplingTargets',
        'xray:PutTelemetryRecords',
        'xray:PutTraceSegments',
      ],
    );
    const put = granted.find((s) => s.Action === 'events:PutEvents');
    assert.deepEqual(put?.Condition, {
      'ForAllValues:StringEquals': { 'events:source': ['eventfabric.session-pipeline'], 'events:detail-type': ['session.pipeline.failed'] },
      Null: { 'events:source': 'false', 'events:detail-type': 'false' },
    });
  });

  test('is started by session.summary.final from the registry, with retries, a maximum age and a DLQ', () => {
    dev.stateless.hasResourceProperties('AWS::Events::Rule', {
      Name: 'eventfabric-dev-session-pipeline-trigger',
      EventPattern: { source: ['nia.interface'], 'detail-type': ['session.summary.final'] },
      Targets: [
        Match.objectLike({
          RetryPolicy: { MaximumRetryAttempts: 3, MaximumEventAgeInSeconds: 3600 },
          DeadLetterConfig: { Arn: Match.anyValue() },
        }),
      ],
    });
    dev.stateless.hasResourceProperties('AWS::Events::Rule', {
      Name: 'eventfabric-dev-session-pipeline-failures',
      EventPattern: { source: ['eventfabric.session-pipeline'], 'detail-type': ['session.pipeline.failed'] },
    });
    dev.stateful.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmName: 'eventfabric-dev-session-pipeline-trigger-dlq-depth' });
    dev.stateless.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'eventfabric-dev-session-pipeline-failed',
      MetricName: 'ExecutionsFailed',
      Namespace: 'AWS/States',
    });
  });

  test('runs one binary as four functions, each told its step', () => {
    const functions = Object.values(dev.stateless.findResources('AWS::Lambda::Function'));
    const steps = functions.map((f) => f.Properties.Environment.Variables.PIPELINE_STEP).sort();
    assert.deepEqual(steps, [...STEPS].sort());
    for (const f of functions) {
      assert.deepEqual(f.Properties.Tags, [{ Key: 'eventfabric:binary', Value: 'session-pipeline' }]);
      assert.equal(f.Properties.FunctionName, `eventfabric-dev-session-${f.Properties.Environment.Variables.PIPELINE_STEP}`);
    }
  });

  test('persistence may only put items in the summaries table, through the platform key', () => {
    const roles = dev.stateless.findResources('AWS::IAM::Policy');
    const persistence = Object.values(roles).find((p) => JSON.stringify(p.Properties.Roles).includes('PersistenceFunctionRole'));
    const actions = (persistence?.Properties.PolicyDocument.Statement as Json[]).flatMap((s) => [s.Action].flat());
    assert.ok(actions.includes('dynamodb:PutItem'));
    assert.ok(!actions.some((a) => /dynamodb:(Get|Query|Scan|Delete|Update|\*)/.test(a)), actions.join(','));
  });
});

describe('summaries table', () => {
  test('is encrypted with the platform key, keyed by tenant and conversation; point-in-time recovery in prod', () => {
    for (const [template, pitr] of [
      [dev.stateful, false],
      [prod.stateful, true],
    ] as const) {
      template.hasResourceProperties('AWS::DynamoDB::Table', {
        KeySchema: [
          { AttributeName: 'tenantId', KeyType: 'HASH' },
          { AttributeName: 'conversationId', KeyType: 'RANGE' },
        ],
        SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: Match.anyValue() },
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: pitr },
      });
    }
  });
});
