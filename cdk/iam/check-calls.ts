/**
 * Each role proves its handler's calls: every AWS call a function's handler made in the
 * contract tests, as the emulator recorded it, is evaluated against that function's
 * synthesized IAM policies with an IAM policy simulator (@cloud-copilot/iam-simulate).
 *
 *   node --import tsx iam/check-calls.ts <templates dir> <recordings dir> [report.json]
 *
 * - <templates dir>/dev/assembly-Dev/*.template.json: the synthesized dev stage (the contract
 *   tests run on its resources).
 * - <recordings dir>/*.jsonl: moto's request log (support::Moto with EVENTFABRIC_IAM_CALLS_DIR).
 *   A handler's calls carry its FunctionName as their access key id (support::function_config,
 *   support::synthesized_function_env); the tests' own calls (key `test`) are not checked.
 *
 * Fails when a call is not allowed by its function's role, when a synthesized function's
 * handler made no call in any contract test (unless NOT_EXERCISED says why), and when removing
 * the statements that allowed a function's calls does not make the check fail (each function is
 * seen to fail without them). Lists, per function, the granted actions no handler used.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runSimulation } from '@cloud-copilot/iam-simulate';

export const ACCOUNT = '123456789012';
export const REGION = 'eu-west-1';
/** Secrets Manager appends 6 random characters to a secret's name in its ARN; both sides use these. */
const SECRET_SUFFIX = 'AbCdEf';

/**
 * Functions whose handlers no contract test runs on the emulator yet, and why. The check fails
 * for any other function without recorded calls, so a new function cannot go unchecked.
 */
export const NOT_EXERCISED: Record<string, string> = {
  'eventfabric-dev-signing-secret-rotation':
    "Secrets Manager's four-step rotation protocol is not run on the emulator; its role is asserted statement by statement in cdk/test/platform.test.ts",
  'eventfabric-dev-realtime-token-secret-rotation': 'the same rotation function as eventfabric-dev-signing-secret-rotation, on another secret',
  'eventfabric-dev-tunnel-token-secret-rotation': 'the same rotation function as eventfabric-dev-signing-secret-rotation, on another secret',
};

/** Granted actions that Lambda or another service uses on the function's behalf, not its handler. */
const USED_BY_THE_SERVICE = new Set([
  'logs:CreateLogStream',
  'logs:PutLogEvents',
  'xray:PutTraceSegments',
  'xray:PutTelemetryRecords',
  // Event source mappings read the stream with the function's role.
  'kinesis:DescribeStream',
  'kinesis:DescribeStreamSummary',
  'kinesis:DescribeStreamConsumer',
  'kinesis:GetRecords',
  'kinesis:GetShardIterator',
  'kinesis:ListShards',
  'kinesis:ListStreams',
  'kinesis:SubscribeToShard',
  'dynamodb:DescribeStream',
  'dynamodb:GetRecords',
  'dynamodb:GetShardIterator',
  'dynamodb:ListStreams',
  // KMS through the services that encrypt (kms:ViaService conditions).
  'kms:Decrypt',
  'kms:Encrypt',
  'kms:GenerateDataKey',
  'kms:GenerateDataKey*',
  'kms:ReEncrypt*',
  'kms:DescribeKey',
]);

type Json = any;

// --- the recorded calls --------------------------------------------------------------------

/** One IAM authorization a handler's request needed. */
export interface Call {
  readonly functionName: string;
  readonly action: string;
  readonly resource: string;
  readonly context: Record<string, string | string[]>;
  /** Where it was recorded: file:line. */
  readonly at: string;
}

interface Recorded {
  headers: Record<string, string>;
  method: string;
  url: string;
  body: string | null;
  body_encoded: boolean;
}

function header(entry: Recorded, name: string): string | undefined {
  const key = Object.keys(entry.headers).find((k) => k.toLowerCase() === name);
  return key === undefined ? undefined : entry.headers[key];
}

function bodyText(entry: Recorded): string {
  if (!entry.body) return '';
  return entry.body_encoded ? Buffer.from(entry.body, 'base64').toString('utf8') : entry.body;
}

const arn = (service: string, resource: string) => `arn:aws:${service}:${REGION}:${ACCOUNT}:${resource}`;

function secretArn(idOrArn: string): string {
  const name = idOrArn.startsWith('arn:') ? idOrArn.split(':secret:')[1].replace(/-[A-Za-z0-9]{6}$/, '') : idOrArn;
  return arn('secretsmanager', `secret:${name}-${SECRET_SUFFIX}`);
}

function tableArn(name: string): string {
  return name.startsWith('arn:') ? name : arn('dynamodb', `table/${name}`);
}

/** The authorizations of one recorded request, or none when it is not a handler's. */
export function callsOf(entry: Recorded, at: string): Call[] {
  const authorization = header(entry, 'authorization') ?? '';
  const scope = /Credential=([^/]+)\/\d{8}\/([^/]+)\/([^/]+)\/aws4_request/.exec(authorization);
  if (!scope || !scope[1].startsWith('eventfabric-')) return [];
  const [, functionName, , service] = scope;
  const make = (action: string, resource: string, context: Call['context'] = {}): Call => ({
    functionName,
    action,
    resource,
    context,
    at,
  });
  const target = header(entry, 'x-amz-target');
  const text = bodyText(entry);
  if (target) {
    const operation = target.split('.').pop()!;
    const body: Json = text ? JSON.parse(text) : {};
    switch (service) {
      case 'dynamodb': {
        if (operation === 'TransactWriteItems') {
          const kinds: Record<string, string> = { Put: 'PutItem', Update: 'UpdateItem', Delete: 'DeleteItem', ConditionCheck: 'ConditionCheckItem' };
          return body.TransactItems.flatMap((item: Json) =>
            Object.entries(kinds)
              .filter(([k]) => item[k])
              .map(([k, a]) => make(`dynamodb:${a}`, tableArn(item[k].TableName))),
          );
        }
        if (operation === 'TransactGetItems') {
          return body.TransactItems.map((item: Json) => make('dynamodb:GetItem', tableArn(item.Get.TableName)));
        }
        if (operation === 'BatchWriteItem' || operation === 'BatchGetItem') {
          return Object.keys(body.RequestItems).map((t) => make(`dynamodb:${operation}`, tableArn(t)));
        }
        if (body.StreamArn) return [make(`dynamodb:${operation}`, body.StreamArn)];
        const table = tableArn(body.TableName);
        return [make(`dynamodb:${operation}`, body.IndexName ? `${table}/index/${body.IndexName}` : table)];
      }
      case 'events': {
        if (operation !== 'PutEvents') break;
        return body.Entries.map((e: Json) => {
          const bus = e.EventBusName ?? 'default';
          return make('events:PutEvents', bus.startsWith('arn:') ? bus : arn('events', `event-bus/${bus}`), {
            // Multi-valued keys (one value per entry); each entry is authorized on its own.
            'events:source': [e.Source],
            'events:detail-type': [e.DetailType],
          });
        });
      }
      case 'secretsmanager':
        return [make(`secretsmanager:${operation}`, secretArn(body.SecretId))];
      case 'ssm': {
        const names: string[] = body.Names ?? [body.Name];
        return names.map((n) => make(`ssm:${operation}`, arn('ssm', `parameter/${n.replace(/^\//, '')}`)));
      }
      case 'kinesis': {
        const stream = body.StreamARN ?? arn('kinesis', `stream/${body.StreamName}`);
        return [make(`kinesis:${operation}`, stream)];
      }
      case 'sqs':
        return [make(`sqs:${operation}`, arn('sqs', new URL(body.QueueUrl).pathname.split('/').pop()!))];
      case 'states':
        return [make(`states:${operation}`, body.stateMachineArn ?? body.executionArn)];
    }
    return [make(`${service}:${operation}`, '*')];
  }
  if (service === 's3') {
    const url = new URL(entry.url);
    const host = url.hostname;
    const pathParts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const virtual = !/^(127\.0\.0\.1|localhost)$/.test(host) && host.split('.').length > 1 && !host.startsWith('s3.');
    const bucket = virtual ? host.split('.')[0] : pathParts.shift()!;
    const key = pathParts.join('/');
    const byMethod: Record<string, string> = { GET: 'GetObject', HEAD: 'GetObject', PUT: 'PutObject', DELETE: 'DeleteObject' };
    const action = key ? byMethod[entry.method] : entry.method === 'GET' ? 'ListBucket' : `${entry.method}Bucket`;
    return [make(`s3:${action}`, key ? `arn:aws:s3:::${bucket}/${key}` : `arn:aws:s3:::${bucket}`)];
  }
  // Query protocol (SNS, and SQS before JSON): Action=… in a form body.
  const form = new URLSearchParams(text);
  const operation = form.get('Action');
  if (operation) {
    // PublishBatch is authorized as sns:Publish.
    if (service === 'sns') return [make(`sns:${operation === 'PublishBatch' ? 'Publish' : operation}`, form.get('TopicArn') ?? '*')];
    if (service === 'sqs') {
      return [make(`sqs:${operation}`, arn('sqs', new URL(form.get('QueueUrl')!).pathname.split('/').pop()!))];
    }
    return [make(`${service}:${operation}`, '*')];
  }
  return [make(`${service}:${entry.method} ${new URL(entry.url).pathname}`, '*')];
}

/**
 * The JSON objects of a recording. moto's threaded server writes an entry and its newline in two
 * writes, so entries of concurrent requests can share a line: objects are split by their braces
 * (outside strings), not by lines.
 */
export function recordedEntries(text: string): Recorded[] {
  const entries: Recorded[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{') {
      if (depth++ === 0) start = i;
    } else if (c === '}' && --depth === 0) {
      entries.push(JSON.parse(text.slice(start, i + 1)));
    }
  }
  if (depth !== 0) throw new Error('a recording ends inside an entry');
  return entries;
}

export function readCalls(dir: string): Call[] {
  const calls: Call[] = [];
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.jsonl')).sort()) {
    recordedEntries(fs.readFileSync(path.join(dir, file), 'utf8')).forEach((entry, i) => {
      calls.push(...callsOf(entry, `${file}#${i + 1}`));
    });
  }
  return calls;
}

// --- the synthesized policies ----------------------------------------------------------------

export interface Template {
  readonly stack: string;
  readonly body: Json;
}

export function readTemplates(dir: string): Template[] {
  const assembly = fs.readdirSync(dir).find((d) => d.startsWith('assembly-'));
  if (!assembly) throw new Error(`no assembly-* directory in ${dir}`);
  return fs
    .readdirSync(path.join(dir, assembly))
    .filter((f) => f.endsWith('.template.json'))
    .map((f) => ({ stack: f, body: JSON.parse(fs.readFileSync(path.join(dir, assembly, f), 'utf8')) }));
}

/** Resolves CloudFormation intrinsics to the physical values the emulator's resources have. */
export class Resolver {
  private readonly exports = new Map<string, { template: Template; value: Json }>();

  constructor(templates: Template[]) {
    for (const template of templates) {
      for (const output of Object.values<Json>(template.body.Outputs ?? {})) {
        if (output.Export) this.exports.set(this.resolve(template, output.Export.Name), { template, value: output.Value });
      }
    }
  }

  resolve(template: Template, value: Json): Json {
    if (Array.isArray(value)) return value.map((v) => this.resolve(template, v));
    if (value === null || typeof value !== 'object') return value;
    const keys = Object.keys(value);
    if (keys.length !== 1 || !(keys[0] === 'Ref' || keys[0].startsWith('Fn::'))) {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, this.resolve(template, v)]));
    }
    const [fn] = keys;
    const arg = value[fn];
    switch (fn) {
      case 'Ref':
        return this.ref(template, arg);
      case 'Fn::GetAtt':
        return this.getAtt(template, arg[0], arg[1]);
      case 'Fn::Join':
        return (this.resolve(template, arg[1]) as Json[]).join(arg[0]);
      case 'Fn::Select':
        return this.resolve(template, arg[1])[Number(this.resolve(template, arg[0]))];
      case 'Fn::Split':
        return String(this.resolve(template, arg[1])).split(arg[0]);
      case 'Fn::Sub': {
        const [text, vars] = Array.isArray(arg) ? arg : [arg, {}];
        return text.replace(/\$\{([^}]+)\}/g, (_: string, name: string) => {
          if (vars[name] !== undefined) return this.resolve(template, vars[name]);
          const [id, attr] = name.split('.');
          return attr ? this.getAtt(template, id, attr) : this.ref(template, id);
        });
      }
      case 'Fn::ImportValue': {
        const name = this.resolve(template, arg);
        const exported = this.exports.get(name);
        if (!exported) throw new Error(`${template.stack}: no export ${name}`);
        return this.resolve(exported.template, exported.value);
      }
      case 'Fn::If':
      case 'Fn::Equals':
      default:
        throw new Error(`${template.stack}: ${fn} is not resolved by this check`);
    }
  }

  private resource(template: Template, id: string): Json {
    const r = template.body.Resources?.[id];
    if (!r) throw new Error(`${template.stack}: no resource ${id}`);
    return r;
  }

  private prop(template: Template, id: string, name: string): string {
    const value = this.resource(template, id).Properties?.[name];
    return value === undefined ? id : this.resolve(template, value);
  }

  ref(template: Template, id: string): string {
    switch (id) {
      case 'AWS::Region':
        return REGION;
      case 'AWS::AccountId':
        return ACCOUNT;
      case 'AWS::Partition':
        return 'aws';
      case 'AWS::URLSuffix':
        return 'amazonaws.com';
      case 'AWS::StackName':
        return template.stack;
    }
    const r = this.resource(template, id);
    switch (r.Type) {
      case 'AWS::DynamoDB::Table':
        return this.prop(template, id, 'TableName');
      case 'AWS::SQS::Queue':
        return `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${this.prop(template, id, 'QueueName')}`;
      case 'AWS::SNS::Topic':
        return arn('sns', this.prop(template, id, 'TopicName'));
      case 'AWS::SecretsManager::Secret':
        return secretArn(this.prop(template, id, 'Name'));
      case 'AWS::Events::EventBus':
        return this.prop(template, id, 'Name');
      case 'AWS::Kinesis::Stream':
        return this.prop(template, id, 'Name');
      case 'AWS::S3::Bucket':
        return this.prop(template, id, 'BucketName');
      case 'AWS::SSM::Parameter':
        return this.prop(template, id, 'Name');
      case 'AWS::Lambda::Function':
        return this.prop(template, id, 'FunctionName');
      case 'AWS::Lambda::Alias':
        return `${this.getAtt(template, r.Properties.FunctionName.Ref, 'Arn')}:${r.Properties.Name}`;
      case 'AWS::StepFunctions::StateMachine':
        return arn('states', `stateMachine:${this.prop(template, id, 'StateMachineName')}`);
      case 'AWS::IAM::Role':
        return this.prop(template, id, 'RoleName');
      default:
        return id;
    }
  }

  getAtt(template: Template, id: string, attr: string): string {
    const r = this.resource(template, id);
    const name = (p: string) => this.prop(template, id, p);
    switch (`${r.Type}.${attr}`) {
      case 'AWS::DynamoDB::Table.Arn':
        return tableArn(name('TableName'));
      case 'AWS::DynamoDB::Table.StreamArn':
        return `${tableArn(name('TableName'))}/stream/*`;
      case 'AWS::SQS::Queue.Arn':
        return arn('sqs', name('QueueName'));
      case 'AWS::SQS::Queue.QueueName':
        return name('QueueName');
      case 'AWS::SNS::Topic.TopicArn':
        return arn('sns', name('TopicName'));
      case 'AWS::Events::EventBus.Arn':
        return arn('events', `event-bus/${name('Name')}`);
      case 'AWS::Events::EventBus.Name':
        return name('Name');
      case 'AWS::Kinesis::Stream.Arn':
        return arn('kinesis', `stream/${name('Name')}`);
      case 'AWS::Kinesis::StreamConsumer.ConsumerARN':
        return `${this.resolve(template, r.Properties.StreamARN)}/consumer/${name('ConsumerName')}`;
      case 'AWS::S3::Bucket.Arn':
        return `arn:aws:s3:::${name('BucketName')}`;
      case 'AWS::KMS::Key.Arn':
        return arn('kms', `key/${id}`);
      case 'AWS::Logs::LogGroup.Arn':
        return arn('logs', `log-group:${name('LogGroupName')}:*`);
      case 'AWS::Lambda::Function.Arn':
        return arn('lambda', `function:${name('FunctionName')}`);
      case 'AWS::IAM::Role.Arn':
        return `arn:aws:iam::${ACCOUNT}:role/${name('RoleName')}`;
      case 'AWS::CloudWatch::Alarm.Arn':
        return arn('cloudwatch', `alarm:${name('AlarmName')}`);
      case 'AWS::SecretsManager::Secret.Id':
        return secretArn(name('Name'));
      case 'AWS::ApiGatewayV2::Api.ApiId':
        return id;
      default:
        return `arn:unresolved:${r.Type}:${id}.${attr}`;
    }
  }
}

export interface FunctionRole {
  readonly functionName: string;
  readonly roleName: string;
  readonly stack: string;
  /** Named policy documents, resolved. */
  readonly policies: Array<{ name: string; policy: Json }>;
}

/** Every function of the stage with the policies of its role, resolved. */
export function functionRoles(templates: Template[]): FunctionRole[] {
  const resolver = new Resolver(templates);
  const roles: FunctionRole[] = [];
  for (const template of templates) {
    const resources: Record<string, Json> = template.body.Resources ?? {};
    for (const [id, fn] of Object.entries(resources)) {
      if (fn.Type !== 'AWS::Lambda::Function') continue;
      const roleId = fn.Properties.Role?.['Fn::GetAtt']?.[0];
      if (!roleId) throw new Error(`${template.stack}: ${id} has a role this check cannot follow`);
      const role = resources[roleId];
      const policies: Array<{ name: string; policy: Json }> = [];
      for (const inline of role.Properties.Policies ?? []) {
        policies.push({ name: `${roleId}/${inline.PolicyName}`, policy: resolver.resolve(template, inline.PolicyDocument) });
      }
      for (const [policyId, policy] of Object.entries(resources)) {
        if (policy.Type !== 'AWS::IAM::Policy') continue;
        if (!JSON.stringify(policy.Properties.Roles).includes(`{"Ref":"${roleId}"}`)) continue;
        policies.push({ name: policyId, policy: resolver.resolve(template, policy.Properties.PolicyDocument) });
      }
      if ((role.Properties.ManagedPolicyArns ?? []).length > 0) {
        throw new Error(`${template.stack}: the role of ${id} has managed policies, which this check cannot read`);
      }
      roles.push({
        functionName: resolver.resolve(template, fn.Properties.FunctionName),
        roleName: roleId,
        stack: template.stack,
        policies,
      });
    }
  }
  return roles;
}

// --- the check -------------------------------------------------------------------------------

export interface Denial {
  readonly call: Call;
  readonly result: string;
}

export interface Report {
  readonly denied: Denial[];
  /** Function → number of calls checked. */
  readonly checked: Record<string, number>;
  /** Function → granted actions its handler never used (service-used actions apart). */
  readonly unused: Record<string, string[]>;
  /** Functions without recorded calls and not in NOT_EXERCISED. */
  readonly unexercised: string[];
  /** NOT_EXERCISED entries that did have calls (the list is stale). */
  readonly stale: string[];
  /** Calls by an access key that names no synthesized function. */
  readonly strangers: Call[];
}

async function allowed(role: FunctionRole, call: Call): Promise<string> {
  const response: Json = await runSimulation(
    {
      identityPolicies: role.policies,
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      request: {
        action: call.action,
        principal: `arn:aws:iam::${ACCOUNT}:role/${role.roleName}`,
        resource: { accountId: ACCOUNT, resource: call.resource },
        contextVariables: call.context,
      },
    } as Json,
    {} as Json,
  );
  if (response.resultType === 'error') return `simulation error: ${JSON.stringify(response.errors)}`;
  return response.overallResult;
}

function grantedActions(role: FunctionRole): string[] {
  return [
    ...new Set(
      role.policies.flatMap((p) =>
        (p.policy.Statement as Json[]).filter((s) => s.Effect === 'Allow').flatMap((s) => [s.Action].flat() as string[]),
      ),
    ),
  ].sort();
}

export async function check(roles: FunctionRole[], calls: Call[], notExercised: Record<string, string> = NOT_EXERCISED): Promise<Report> {
  const byName = new Map(roles.map((r) => [r.functionName, r]));
  const denied: Denial[] = [];
  const checked: Record<string, number> = {};
  const used = new Map<string, Set<string>>();
  const strangers: Call[] = [];
  const seen = new Set<string>();
  for (const call of calls) {
    const role = byName.get(call.functionName);
    if (!role) {
      strangers.push(call);
      continue;
    }
    // The same authorization, once.
    const key = `${call.functionName} ${call.action} ${call.resource} ${JSON.stringify(call.context)}`;
    checked[call.functionName] = (checked[call.functionName] ?? 0) + 1;
    used.set(call.functionName, (used.get(call.functionName) ?? new Set()).add(call.action));
    if (seen.has(key)) continue;
    seen.add(key);
    const result = await allowed(role, call);
    if (result !== 'Allowed') denied.push({ call, result });
  }
  const unused: Record<string, string[]> = {};
  for (const role of roles) {
    const actions = used.get(role.functionName) ?? new Set();
    unused[role.functionName] = grantedActions(role).filter(
      (a) => !USED_BY_THE_SERVICE.has(a) && ![...actions].some((u) => u.toLowerCase() === a.toLowerCase()),
    );
  }
  // A role that grants its handler nothing (only what Lambda uses) has nothing to prove.
  const grantsNothing = (r: FunctionRole) => grantedActions(r).every((a) => USED_BY_THE_SERVICE.has(a));
  const unexercised = roles
    .filter((r) => !checked[r.functionName] && !(r.functionName in notExercised) && !grantsNothing(r))
    .map((r) => r.functionName);
  const stale = Object.keys(notExercised).filter((n) => checked[n]);
  return { denied, checked, unused, unexercised, stale, strangers };
}

/** `role` without the statements that allow `call`: its handler must then be refused. */
export function withoutStatementsFor(role: FunctionRole, call: Call): FunctionRole {
  const [service, name] = call.action.split(':');
  const matches = (pattern: string) => {
    const [s, n] = pattern.split(':');
    const re = new RegExp(`^${n.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`, 'i');
    return s === service && re.test(name);
  };
  return {
    ...role,
    policies: role.policies.map((p) => ({
      name: p.name,
      policy: {
        ...p.policy,
        Statement: (p.policy.Statement as Json[]).filter(
          (s) => !(s.Effect === 'Allow' && ([s.Action].flat() as string[]).some((a) => a === '*' || matches(a))),
        ),
      },
    })),
  };
}

async function main(): Promise<void> {
  const [templatesDir, callsDir, reportPath] = process.argv.slice(2);
  if (!templatesDir || !callsDir) {
    console.error('usage: check-calls.ts <templates dir of one env> <recordings dir> [report.json]');
    process.exit(2);
  }
  const roles = functionRoles(readTemplates(templatesDir));
  const calls = readCalls(callsDir);
  const report = await check(roles, calls);
  let failed = false;
  for (const d of report.denied) {
    failed = true;
    console.error(`DENIED  ${d.call.functionName}: ${d.call.action} on ${d.call.resource} ${JSON.stringify(d.call.context)} -> ${d.result} (${d.call.at})`);
  }
  for (const name of report.unexercised) {
    failed = true;
    console.error(`UNCHECKED ${name}: no contract test ran its handler under its own identity (support::function_config), and NOT_EXERCISED gives no reason`);
  }
  for (const name of report.stale) {
    failed = true;
    console.error(`STALE   ${name} is in NOT_EXERCISED but its calls were recorded: remove it from the list`);
  }
  for (const call of report.strangers) {
    failed = true;
    console.error(`UNKNOWN ${call.functionName} is not a synthesized function (${call.action}, ${call.at})`);
  }
  // Seen to fail: without the statements that allowed its first call, each function is refused.
  const byName = new Map(roles.map((r) => [r.functionName, r]));
  for (const name of Object.keys(report.checked)) {
    const first = calls.find((c) => c.functionName === name)!;
    const stripped = withoutStatementsFor(byName.get(name)!, first);
    const again = await check([stripped], [first], {});
    if (again.denied.length !== 1) {
      failed = true;
      console.error(`NOT PROVEN ${name}: removing the statements for ${first.action} did not deny it`);
    }
  }
  console.log(`IAM check: ${calls.length} recorded calls of ${Object.keys(report.checked).length} functions against their synthesized roles`);
  for (const role of roles) {
    const n = report.checked[role.functionName] ?? 0;
    const note =
      n > 0
        ? `${n} calls allowed`
        : report.unexercised.includes(role.functionName)
          ? 'NOT EXERCISED, no reason given'
          : `not exercised: ${NOT_EXERCISED[role.functionName] ?? 'its role grants its handler nothing beyond logs and traces'}`;
    const unused = report.unused[role.functionName];
    console.log(`  ${role.functionName}: ${note}${n > 0 && unused.length > 0 ? `; granted, no handler call: ${unused.join(', ')}` : ''}`);
  }
  if (reportPath) fs.writeFileSync(reportPath, JSON.stringify(report, null, 2));
  if (failed) process.exit(1);
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
