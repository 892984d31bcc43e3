import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type FunctionRole, callsOf, check, recordedEntries, withoutStatementsFor } from '../iam/check-calls';

/** A recorded DynamoDB UpdateItem, as moto's recorder writes it. */
const entry = {
  headers: {
    Authorization:
      'AWS4-HMAC-SHA256 Credential=eventfabric-dev-forward-api/20261206/eu-west-1/dynamodb/aws4_request, SignedHeaders=host, Signature=x',
    'X-Amz-Target': 'DynamoDB_20120810.UpdateItem',
  },
  method: 'POST',
  url: 'http://127.0.0.1:5000/',
  body: JSON.stringify({ TableName: 'eventfabric-dev-forward-state', Key: {} }),
  body_encoded: false,
};

const role: FunctionRole = {
  functionName: 'eventfabric-dev-forward-api',
  roleName: 'ForwardRole',
  stack: 'Stateless',
  policies: [
    {
      name: 'Default',
      policy: {
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Action: ['dynamodb:UpdateItem', 'dynamodb:PutItem'], Resource: 'arn:aws:dynamodb:eu-west-1:123456789012:table/eventfabric-dev-forward-state' },
          { Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: '*' },
        ],
      },
    },
  ],
};

describe('IAM check of the handlers calls', () => {
  test('a recorded request becomes the authorization it needed, attributed by its access key', () => {
    const [call] = callsOf(entry, 'f#1');
    assert.equal(call.functionName, 'eventfabric-dev-forward-api');
    assert.equal(call.action, 'dynamodb:UpdateItem');
    assert.equal(call.resource, 'arn:aws:dynamodb:eu-west-1:123456789012:table/eventfabric-dev-forward-state');
    // The tests' own calls are not the functions'.
    assert.deepEqual(callsOf({ ...entry, headers: { ...entry.headers, Authorization: 'AWS4-HMAC-SHA256 Credential=test/20261206/eu-west-1/dynamodb/aws4_request' } }, 'f#2'), []);
  });

  test('entries of concurrent requests on one line are read apart', () => {
    const text = `${JSON.stringify(entry)}${JSON.stringify({ ...entry, body: '{"a":"}{"}' })}\n\n`;
    assert.equal(recordedEntries(text).length, 2);
  });

  test('allowed with its statement, denied without it, and the unused grant is listed', async () => {
    const calls = callsOf(entry, 'f#1');
    const report = await check([role], calls, {});
    assert.deepEqual(report.denied, []);
    assert.deepEqual(report.unused[role.functionName], ['dynamodb:PutItem', 'secretsmanager:GetSecretValue']);
    const stripped = await check([withoutStatementsFor(role, calls[0])], calls, {});
    assert.equal(stripped.denied.length, 1);
    assert.equal(stripped.denied[0].result, 'ImplicitlyDenied');
  });

  test('a function that grants its handler something but made no call fails, unless a reason is given', async () => {
    assert.deepEqual((await check([role], [], {})).unexercised, [role.functionName]);
    assert.deepEqual((await check([role], [], { [role.functionName]: 'why' })).unexercised, []);
    assert.deepEqual((await check([role], callsOf(entry, 'f#1'), { [role.functionName]: 'why' })).stale, [role.functionName]);
  });
});
