import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { buildApp } from '../lib/app';
import { envConfig } from '../lib/config';
import { EventFabricStage } from '../lib/stage';
import { archivedTopics, forwardedTopics, interfacePattern, loadRegistry } from '../lib/registry';

const cdkContext = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'cdk.json'), 'utf8')).context;

/** An app for `env`, with asset bundling skipped: these tests look at templates, not binaries. */
function synth(env: string) {
  const app = new App({ context: { ...cdkContext, env, 'aws:cdk:bundling-stacks': [] } });
  const { stage } = buildApp(app);
  return {
    app,
    stage,
    stateful: Template.fromStack(stage.stateful),
    stateless: Template.fromStack(stage.stateless),
  };
}

const dev = synth('dev');

function statements(template: Template, type: string): Array<Record<string, unknown>> {
  return Object.values(template.findResources(type)).flatMap(
    (r) => (r.Properties.PolicyDocument?.Statement ?? []) as Array<Record<string, unknown>>,
  );
}

describe('forward function', () => {
  test('is a provided.al2023 x86_64 binary with tracing, JSON logs and explicit limits', () => {
    dev.stateless.hasResourceProperties('AWS::Lambda::Function', {
      FunctionName: 'eventfabric-dev-forward-api',
      Runtime: 'provided.al2023',
      Handler: 'bootstrap',
      Architectures: ['x86_64'],
      MemorySize: 256,
      Timeout: 10,
      TracingConfig: { Mode: 'Active' },
      LoggingConfig: Match.objectLike({ LogFormat: 'JSON' }),
      Environment: { Variables: Match.objectLike({ SESSION_BUS_NAME: Match.anyValue() }) },
    });
    dev.stateless.hasResourceProperties('AWS::Logs::LogGroup', {
      LogGroupName: '/aws/lambda/eventfabric-dev-forward-api',
      RetentionInDays: 7,
    });
  });

  test('may put events on the session bus and nowhere else', () => {
    const all = [...statements(dev.stateless, 'AWS::IAM::Policy'), ...statements(dev.stateless, 'AWS::IAM::Role')];
    const roles = dev.stateless.findResources('AWS::IAM::Role');
    const inline = Object.values(roles).flatMap((r) =>
      (r.Properties.Policies ?? []).flatMap((p: { PolicyDocument: { Statement: unknown[] } }) => p.PolicyDocument.Statement),
    ) as Array<Record<string, unknown>>;
    const actions = [...all, ...inline].flatMap((s) => ([] as string[]).concat(s.Action as string | string[]));
    assert.ok(!actions.some((a) => a === '*' || a.endsWith(':*')), `wildcard action in ${actions.join(', ')}`);
    const putEvents = [...all, ...inline].filter((s) => ([] as string[]).concat(s.Action as string).includes('events:PutEvents'));
    assert.equal(putEvents.length, 1);
    const resource = JSON.stringify(putEvents[0].Resource);
    assert.match(resource, /SessionBus/);
    assert.doesNotMatch(resource, /AnalyticsBus/);
    assert.ok(!roles || Object.values(roles).every((r) => !r.Properties.ManagedPolicyArns), 'no managed policies');
  });
});

describe('routing', () => {
  test('a topic on the analytics bus gives the function that bus, and only then', () => {
    const registry = loadRegistry();
    const withAnalytics = {
      ...registry,
      topics: registry.topics.map((t) => (t.topic === 'ui.interaction.sampled' ? { ...t, bus: 'analytics' as const } : t)),
    };
    const app = new App({ context: { ...cdkContext, 'aws:cdk:bundling-stacks': [] } });
    const stage = new EventFabricStage(app, 'Test', { config: envConfig('dev'), registry: withAnalytics });
    const template = Template.fromStack(stage.stateless);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ ANALYTICS_BUS_NAME: Match.anyValue() }) },
    });
    const resources = statements(template, 'AWS::IAM::Policy')
      .filter((st) => st.Action === 'events:PutEvents')
      .flatMap((st) => ([] as unknown[]).concat(st.Resource).map((r) => JSON.stringify(r)));
    assert.equal(resources.length, 2, resources.join(' '));
    assert.ok(resources.some((r) => /SessionBus/.test(r)));
    assert.ok(resources.some((r) => /AnalyticsBus/.test(r)));
    // The dev app as committed has no analytics topic: no analytics grant, no variable.
    const devFunction = Object.values(dev.stateless.findResources('AWS::Lambda::Function'))[0];
    assert.equal(devFunction.Properties.Environment.Variables.ANALYTICS_BUS_NAME, undefined);
  });

  const registry = loadRegistry();

  test('the consumer rule pattern is generated from the registry', () => {
    const expected = forwardedTopics(registry, 'session').sort();
    assert.ok(expected.length >= 5);
    assert.ok(!expected.includes('debug.console.captured'), 'denied topics are never routed');
    dev.stateless.hasResourceProperties('AWS::Events::Rule', {
      Name: 'eventfabric-dev-session-consumer',
      EventPattern: { source: ['nia.interface'], 'detail-type': expected },
    });
  });

  test('every rule target has a DLQ and a retry policy', () => {
    const rules = Object.values(dev.stateless.findResources('AWS::Events::Rule'));
    assert.ok(rules.length > 0);
    for (const rule of rules) {
      for (const target of rule.Properties.Targets) {
        assert.ok(target.DeadLetterConfig?.Arn, `target ${target.Id} has no DLQ`);
        assert.equal(target.RetryPolicy.MaximumRetryAttempts, 3);
      }
    }
  });

  test('tenant filtering adds a detail.tenantId condition; unknown topics are refused', () => {
    const pattern = interfacePattern(registry, 'session', { topics: ['session.summary.final'], tenantIds: ['acme'] });
    assert.deepEqual(pattern, {
      source: ['nia.interface'],
      detailType: ['session.summary.final'],
      detail: { tenantId: ['acme'] },
    });
    assert.throws(() => interfacePattern(registry, 'session', { topics: ['debug.console.captured'] }), /not forwarded/);
  });
});

describe('archive', () => {
  test('only topics flagged archive are archived, encrypted with the platform key, retention per env', () => {
    const registry = loadRegistry();
    const archived = archivedTopics(registry, 'session').sort();
    assert.deepEqual(archived, ['moderation.message.flagged', 'session.summary.final']);
    dev.stateful.hasResourceProperties('AWS::Events::Archive', {
      ArchiveName: 'eventfabric-dev-session-archive',
      EventPattern: { source: ['nia.interface'], 'detail-type': archived },
      RetentionDays: 7,
      KmsKeyIdentifier: Match.anyValue(),
    });
    synth('prod').stateful.hasResourceProperties('AWS::Events::Archive', { RetentionDays: 365 });
  });
});

describe('stateful resources', () => {
  test('every queue is encrypted with the platform key and TLS-only', () => {
    const queues = dev.stateful.findResources('AWS::SQS::Queue');
    assert.equal(Object.keys(queues).length, 3);
    for (const [id, q] of Object.entries(queues)) {
      assert.ok(q.Properties.KmsMasterKeyId, `${id} is not KMS-encrypted`);
    }
    const policies = Object.values(dev.stateful.findResources('AWS::SQS::QueuePolicy'));
    assert.equal(policies.length, 3);
    for (const p of policies) {
      assert.ok(
        p.Properties.PolicyDocument.Statement.some(
          (s: Record<string, any>) => s.Effect === 'Deny' && s.Condition?.Bool?.['aws:SecureTransport'] === 'false',
        ),
      );
    }
  });

  test('only the named rule may deliver to the consumer queues', () => {
    const policies = Object.values(dev.stateful.findResources('AWS::SQS::QueuePolicy'));
    const allows = policies.flatMap((p) =>
      p.Properties.PolicyDocument.Statement.filter((s: Record<string, any>) => s.Effect === 'Allow'),
    );
    assert.equal(allows.length, 2, 'consumer queue and delivery DLQ');
    for (const s of allows) {
      assert.deepEqual(s.Principal, { Service: 'events.amazonaws.com' });
      assert.match(JSON.stringify(s.Condition.ArnEquals['aws:SourceArn']), /:rule\/",\{"Ref":"SessionBus[0-9A-F]+"\},"\/eventfabric-dev-session-consumer"/);
    }
  });

  test('every dead-letter queue has a depth alarm that notifies the alarm topic', () => {
    const alarms = Object.values(dev.stateful.findResources('AWS::CloudWatch::Alarm'));
    const names = alarms.map((a) => a.Properties.AlarmName).sort();
    assert.deepEqual(names, ['eventfabric-dev-session-consumer-delivery-dlq-depth', 'eventfabric-dev-session-consumer-dlq-depth']);
    for (const a of alarms) {
      assert.equal(a.Properties.MetricName, 'ApproximateNumberOfMessagesVisible');
      assert.equal(a.Properties.Threshold, 1);
      assert.equal(a.Properties.AlarmActions.length, 1);
    }
  });

  test('prod retains stateful resources, dev does not', () => {
    const prod = synth('prod');
    for (const type of ['AWS::SQS::Queue', 'AWS::KMS::Key', 'AWS::Events::EventBus']) {
      for (const r of Object.values(prod.stateful.findResources(type))) assert.equal(r.DeletionPolicy, 'Retain', type);
      for (const r of Object.values(dev.stateful.findResources(type))) assert.equal(r.DeletionPolicy, 'Delete', type);
    }
    assert.equal(prod.stage.stateful.terminationProtection, true);
  });
});

describe('app', () => {
  test('an unknown environment is a clear error', () => {
    assert.throws(() => buildApp(new App({ context: { env: 'qa' } })), /unknown environment 'qa': use -c env=<dev\|staging\|prod>/);
  });

  test('cdk-nag findings fail the synth', () => {
    const app = new App({ context: { ...cdkContext, env: 'staging', 'aws:cdk:bundling-stacks': [] } });
    const { stage } = buildApp(app);
    // An unencrypted queue without DLQ or TLS enforcement breaks several AwsSolutions rules.
    new sqs.Queue(stage.stateful as Stack, 'InsecureQueue', { encryption: sqs.QueueEncryption.UNENCRYPTED });
    assert.throws(() => app.synth(), /Validation failed/);
  });
});
