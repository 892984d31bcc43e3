import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { buildApp } from '../lib/app';
import { ENV_NAMES, envConfig } from '../lib/config';
import { DeliveryRoles } from '../lib/systems/delivery';

const cdkContext = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'cdk.json'), 'utf8')).context;

function deliveryTemplate(env: string): Template {
  const app = new App({ context: { ...cdkContext, env, 'aws:cdk:bundling-stacks': [] } });
  const { stage } = buildApp(app);
  return Template.fromStack(stage.delivery);
}

type Roles = Record<string, { Properties: Record<string, any> }>;

describe('delivery roles', () => {
  for (const env of ENV_NAMES) {
    const repo = envConfig(env).delivery.githubRepository;
    const template = deliveryTemplate(env);
    const roles = template.findResources('AWS::IAM::Role') as Roles;

    test(`${env}: the deploy role trusts only the repository's '${env}' environment, through the OIDC provider`, () => {
      const deploy = Object.values(roles).find((r) => r.Properties.RoleName === `eventfabric-${env}-deploy`);
      assert.ok(deploy, 'a deploy role');
      const trust = deploy.Properties.AssumeRolePolicyDocument.Statement;
      assert.equal(trust.length, 1, 'one trust statement');
      assert.equal(trust[0].Action, 'sts:AssumeRoleWithWebIdentity');
      assert.deepEqual(Object.keys(trust[0].Principal), ['Federated']);
      assert.deepEqual(trust[0].Condition, {
        StringEquals: {
          'token.actions.githubusercontent.com:aud': 'sts.amazonaws.com',
          'token.actions.githubusercontent.com:sub': `repo:${repo}:environment:${env}`,
        },
      });
      assert.equal(Object.keys(trust[0].Condition).length, 1, 'no StringLike: the subject is matched exactly');
    });

    test(`${env}: the diff role trusts pull requests of the repository only`, () => {
      const diff = Object.values(roles).find((r) => r.Properties.RoleName === `eventfabric-${env}-diff`);
      assert.ok(diff, 'a diff role');
      const [trust] = diff.Properties.AssumeRolePolicyDocument.Statement;
      assert.equal(trust.Condition.StringEquals['token.actions.githubusercontent.com:sub'], `repo:${repo}:pull_request`);
    });

    test(`${env}: the roles may assume the CDK bootstrap roles and nothing else`, () => {
      const ours = Object.values(roles);
      assert.equal(ours.length, 2, 'the deploy and diff roles');
      const statements = ours.flatMap((r) =>
        (r.Properties.Policies ?? []).flatMap((p: any) => p.PolicyDocument.Statement),
      );
      assert.equal(statements.length, 2);
      for (const s of statements) {
        assert.deepEqual(s.Action, ['sts:AssumeRole', 'sts:TagSession']);
        for (const resource of [s.Resource].flat()) {
          const text = JSON.stringify(resource);
          assert.match(text, /:role\/cdk-hnb659fds-(deploy|file-publishing|lookup)-role-/, text);
        }
      }
      // The diff role reaches the read-only lookup role only.
      const diff = Object.values(roles).find((r) => r.Properties.RoleName === `eventfabric-${env}-diff`)!;
      assert.doesNotMatch(JSON.stringify(diff.Properties.Policies), /deploy-role|file-publishing/);
    });

    test(`${env}: the stack creates the GitHub OIDC provider`, () => {
      template.resourceCountIs('AWS::IAM::OIDCProvider', 1);
      template.hasResourceProperties('AWS::IAM::OIDCProvider', {
        Url: 'https://token.actions.githubusercontent.com',
        ClientIdList: ['sts.amazonaws.com'],
      });
      template.resourceCountIs('AWS::Lambda::Function', 0);
    });
  }

  test('an environment sharing an account imports the provider instead of creating a second', () => {
    const stack = new Stack(new App(), 'S', { env: { account: '111111111111', region: 'eu-west-1' } });
    new DeliveryRoles(stack, 'D', { envName: 'staging', settings: { ...envConfig('staging').delivery, oidcProvider: 'import' } });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::IAM::OIDCProvider', 0);
    const roles = Object.values(template.findResources('AWS::IAM::Role'));
    assert.equal(roles.length, 2);
    for (const role of roles) {
      assert.match(
        JSON.stringify(role.Properties.AssumeRolePolicyDocument.Statement[0].Principal.Federated),
        /:iam::111111111111:oidc-provider\/token.actions.githubusercontent.com"/,
      );
    }
  });

  test('a malformed repository is refused with the setting named', () => {
    const stack = new Stack(new App(), 'S');
    assert.throws(
      () => new DeliveryRoles(stack, 'D', { envName: 'dev', settings: { ...envConfig('dev').delivery, githubRepository: 'just-a-name' } }),
      /delivery.githubRepository must be 'owner\/name'/,
    );
  });
});

/** Every template of `env`'s stage, by stack id. */
function stageTemplates(env: string): Record<string, Template> {
  const app = new App({ context: { ...cdkContext, env, 'aws:cdk:bundling-stacks': [] } });
  const { stage } = buildApp(app);
  return Object.fromEntries(
    stage.node.children.filter((c): c is Stack => c instanceof Stack).map((s) => [s.node.id, Template.fromStack(s)]),
  );
}

/** Where a function is invoked from: these resources must name its live alias, never the function. */
const TRIGGERS = [
  'AWS::Lambda::EventSourceMapping',
  'AWS::Lambda::Permission',
  'AWS::Events::Rule',
  'AWS::ApiGatewayV2::Integration',
  'AWS::ApiGatewayV2::Authorizer',
  'AWS::StepFunctions::StateMachine',
  'AWS::SecretsManager::RotationSchedule',
];

const EXPECTED_CONFIG: Record<string, unknown> = {
  dev: 'CodeDeployDefault.LambdaAllAtOnce',
  staging: 'CodeDeployDefault.LambdaCanary10Percent5Minutes',
  // No predefined config moves 5 % at a time: the stack's own.
  prod: { Type: 'TimeBasedLinear', TimeBasedLinear: { LinearInterval: 2, LinearPercentage: 5 } },
};

describe('canary deployments', () => {
  for (const env of ENV_NAMES) {
    const templates = stageTemplates(env);

    test(`${env}: every function has a live alias on its current version, shifted by a deployment group that rolls back on alarms`, () => {
      let functions = 0;
      for (const [stackId, template] of Object.entries(templates)) {
        const fns = template.findResources('AWS::Lambda::Function');
        const aliases = Object.values(template.findResources('AWS::Lambda::Alias')) as any[];
        const versions = template.findResources('AWS::Lambda::Version');
        const groups = template.findResources('AWS::CodeDeploy::DeploymentGroup');
        for (const [fnId, fn] of Object.entries(fns)) {
          functions += 1;
          const label = `${stackId}: ${fn.Properties.FunctionName}`;
          const alias = aliases.filter((a) => a.Properties.FunctionName.Ref === fnId);
          assert.equal(alias.length, 1, `${label}: one alias`);
          assert.equal(alias[0].Properties.Name, 'live', label);
          const versionId = alias[0].Properties.FunctionVersion['Fn::GetAtt'][0];
          assert.equal(versions[versionId].Properties.FunctionName.Ref, fnId, `${label}: the alias is on a version of this function`);
          const update = alias[0].UpdatePolicy?.CodeDeployLambdaAliasUpdate;
          assert.ok(update, `${label}: CloudFormation hands alias updates to CodeDeploy`);
          const group = groups[update.DeploymentGroupName.Ref];
          assert.ok(group, `${label}: its deployment group is in the stack`);
          const configName = group.Properties.DeploymentConfigName;
          const config = configName.Ref
            ? template.findResources('AWS::CodeDeploy::DeploymentConfig')[configName.Ref].Properties.TrafficRoutingConfig
            : configName;
          assert.deepEqual(config, EXPECTED_CONFIG[env], `${label}: ${env}'s traffic shift`);
          assert.equal(group.Properties.AlarmConfiguration.Enabled, true);
          const alarms = group.Properties.AlarmConfiguration.Alarms;
          assert.ok(alarms.length >= 2, `${label}: error and latency alarms at least`);
          assert.deepEqual(
            [...group.Properties.AutoRollbackConfiguration.Events].sort(),
            ['DEPLOYMENT_FAILURE', 'DEPLOYMENT_STOP_ON_ALARM', 'DEPLOYMENT_STOP_ON_REQUEST'],
            `${label}: rolls back on failure, alarm and stop`,
          );
        }
      }
      assert.equal(functions, 23, 'every function of the platform');
    });

    test(`${env}: every trigger invokes a live alias, never the function or $LATEST`, () => {
      let triggers = 0;
      for (const [stackId, template] of Object.entries(templates)) {
        const fnIds = Object.keys(template.findResources('AWS::Lambda::Function'));
        const aliasIds = Object.keys(template.findResources('AWS::Lambda::Alias'));
        for (const type of TRIGGERS) {
          for (const [id, resource] of Object.entries(template.findResources(type))) {
            const text = JSON.stringify(resource.Properties);
            for (const fnId of fnIds) {
              assert.ok(
                !text.includes(`{"Ref":"${fnId}"}`) && !text.includes(`"Fn::GetAtt":["${fnId}","Arn"]`),
                `${stackId}: ${type} ${id} names the function ${fnId} instead of its alias`,
              );
            }
            if (aliasIds.some((a) => text.includes(`{"Ref":"${a}"}`))) triggers += 1;
          }
        }
        // Asynchronous invocation settings name the function and the alias as their qualifier.
        for (const [id, config] of Object.entries(template.findResources('AWS::Lambda::EventInvokeConfig'))) {
          // The qualifier is taken from the alias's ARN (`…:function:<name>:live`).
          assert.match(JSON.stringify(config.Properties.Qualifier), /"Ref":"\w+Live\w+"/, `${stackId}: ${id} configures the live alias`);
        }
      }
      assert.ok(triggers >= 30, `triggers found: ${triggers}`);
    });

    test(`${env}: the business alarms roll their function back too`, () => {
      const groupsWith = (stackId: string, alarmName: string) =>
        Object.values(templates[stackId].findResources('AWS::CodeDeploy::DeploymentGroup')).filter((g) =>
          JSON.stringify(g.Properties.AlarmConfiguration.Alarms).includes(alarmName),
        ).length;
      const alarmId = (stackId: string, name: string) =>
        Object.entries(templates[stackId].findResources('AWS::CloudWatch::Alarm')).find(([, a]) => a.Properties.AlarmName === name)![0];
      assert.equal(groupsWith('Stateless', alarmId('Stateless', `eventfabric-${env}-forward-failures`)), 1);
      assert.equal(groupsWith('TunnelStateless', alarmId('TunnelStateless', `eventfabric-${env}-tunnel-timeouts`)), 1);
      assert.equal(groupsWith('IngestStateless', alarmId('IngestStateless', `eventfabric-${env}-ingest-malformed-rate`)), 1);
    });
  }
});

describe('forwarding kill switch', () => {
  const stateless = stageTemplates('prod').Stateless;

  test('the forward function reads the switch parameter, and may do nothing else with it', () => {
    const [paramId] = Object.entries(stateless.findResources('AWS::SSM::Parameter')).find(
      ([, p]) => p.Properties.Name === '/eventfabric/prod/forwarding/enabled',
    )!;
    stateless.hasResourceProperties('AWS::SSM::Parameter', { Name: '/eventfabric/prod/forwarding/enabled', Value: 'on', Type: 'String' });
    stateless.hasResourceProperties('AWS::Lambda::Function', {
      FunctionName: 'eventfabric-prod-forward-api',
      Environment: { Variables: Match.objectLike({ FORWARDING_SWITCH_PARAMETER: { Ref: paramId } }) },
    });
    const ssmStatements = Object.values(stateless.findResources('AWS::IAM::Policy'))
      .flatMap((p) => p.Properties.PolicyDocument.Statement as any[])
      .filter((s) => [s.Action].flat().some((a: string) => a.startsWith('ssm:')));
    assert.deepEqual(
      ssmStatements.map((s) => [s.Action].flat().join(',')).sort(),
      ['ssm:GetParameter', 'ssm:PutParameter'],
      'the function reads, the state machine writes',
    );
    for (const s of ssmStatements) assert.match(JSON.stringify(s.Resource), new RegExp(`:parameter",\\{"Ref":"${paramId}"`));
  });

  test("the failure rate alarm's ALARM state starts the state machine, with retries and a DLQ", () => {
    stateless.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'eventfabric-prod-forward-failure-rate',
      Threshold: 25,
      Metrics: Match.arrayWith([Match.objectLike({ Expression: Match.stringLikeRegexp('>= 100, 100 \\* FILL\\(failed, 0\\)') })]),
    });
    stateless.hasResourceProperties('AWS::Events::Rule', {
      Name: 'eventfabric-prod-forward-kill-switch',
      EventPattern: {
        source: ['aws.cloudwatch'],
        'detail-type': ['CloudWatch Alarm State Change'],
        resources: [{ 'Fn::GetAtt': [Match.stringLikeRegexp('KillSwitchFailureRateAlarm'), 'Arn'] }],
        detail: { state: { value: ['ALARM'] } },
      },
      Targets: [
        Match.objectLike({
          Arn: { Ref: Match.stringLikeRegexp('KillSwitchStateMachine') },
          DeadLetterConfig: { Arn: { 'Fn::ImportValue': Match.stringLikeRegexp('KillSwitchDlq') } },
          RetryPolicy: Match.objectLike({ MaximumRetryAttempts: Match.anyValue() }),
        }),
      ],
    });
  });
});
