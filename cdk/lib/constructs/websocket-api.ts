import { CfnOutput, type RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import { WebSocketLambdaAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { WebSocketLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { keyUseThroughServices } from './policies';
import type { RustFunction } from './rust-function';

export interface TokenWebSocketApiProps {
  /** The API's name; its access log group is `/aws/apigateway/<name>`. */
  readonly apiName: string;
  readonly description: string;
  /** The `$connect` authorizer (the shared `eventfabric_websocket::auth`), reading `tokenSecretArn`. */
  readonly authorizer: RustFunction;
  readonly authorizerName: string;
  readonly tokenSecretArn: string;
  readonly key: kms.IKey;
  /**
   * Where the token is: `route.request.querystring.token` (browsers cannot set headers on a
   * WebSocket) or `route.request.header.Authorization` (agents and services).
   */
  readonly identitySource: string;
  /** `$connect`, `$disconnect`, `$default` and every route in `routes`. */
  readonly connections: RustFunction;
  /** Routes selected by `$request.body.action` beyond the three built in; each returns its answer. */
  readonly routes: readonly string[];
  readonly throttle: { readonly rateLimit: number; readonly burstLimit: number };
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
  /** The `WebSocketEndpoint` output's description (how to connect). */
  readonly endpointDescription: string;
}

/**
 * A WebSocket API as the platform runs them (realtime, the tunnel): `$connect` behind the
 * token authorizer (which may read the token secret, through Secrets Manager only), the
 * connection function on every route, route selection on `$request.body.action`, a throttled
 * `live` stage whose JSON access logs leave the query string and headers (the token) out, and
 * the endpoint as an output. {@link grantPush} lets a function post to connections.
 *
 * The children are `ConnectIntegration`, `WebSocketApi`, `WebSocketAccessLogs`,
 * `WebSocketStage` and `WebSocketEndpoint`: the realtime system built them directly, and keeps
 * their logical ids by marking this construct with `keepChildLogicalIds`.
 */
export class TokenWebSocketApi extends Construct {
  readonly api: apigw.WebSocketApi;
  readonly stage: apigw.WebSocketStage;

  constructor(scope: Construct, id: string, props: TokenWebSocketApiProps) {
    super(scope, id);
    const region = Stack.of(this).region;
    props.authorizer.function.addToRolePolicy(
      new iam.PolicyStatement({ sid: 'ReadTheTokenSecret', actions: ['secretsmanager:GetSecretValue'], resources: [props.tokenSecretArn] }),
    );
    props.authorizer.function.addToRolePolicy(keyUseThroughServices('UsePlatformKeyThroughSecrets', props.key, region, ['secretsmanager']));
    for (const f of [props.authorizer, props.connections]) {
      Validations.of(f.function).acknowledge({
        id: 'Serverless-LambdaDLQ',
        reason: 'Invoked synchronously by API Gateway (the client sees the answer); there is no asynchronous event to dead-letter.',
      });
    }

    // The live aliases: CodeDeploy shifts them (RustFunction).
    const connections = props.connections.alias;
    this.api = new apigw.WebSocketApi(this, 'WebSocketApi', {
      apiName: props.apiName,
      description: props.description,
      routeSelectionExpression: '$request.body.action',
      connectRouteOptions: {
        integration: new WebSocketLambdaIntegration('ConnectIntegration', connections),
        authorizer: new WebSocketLambdaAuthorizer('ConnectAuthorizer', props.authorizer.alias, {
          authorizerName: props.authorizerName,
          identitySource: [props.identitySource],
        }),
      },
      disconnectRouteOptions: { integration: new WebSocketLambdaIntegration('DisconnectIntegration', connections) },
      defaultRouteOptions: {
        integration: new WebSocketLambdaIntegration('DefaultIntegration', connections),
        returnResponse: true,
      },
    });
    for (const route of props.routes) {
      this.api.addRoute(route, {
        integration: new WebSocketLambdaIntegration(`${capitalize(route)}Integration`, connections),
        returnResponse: true,
      });
    }
    for (const route of ['$disconnect', '$default', ...props.routes]) {
      Validations.of(this.api.node.findChild(`${route}-Route`)).acknowledge({
        id: 'AwsSolutions-APIG4',
        reason:
          'A WebSocket API authorizes at $connect only (API Gateway allows no authorizer on other routes); this route ' +
          'runs on a connection that passed the $connect authorizer.',
      });
    }
    const accessLogs = new logs.LogGroup(this, 'WebSocketAccessLogs', {
      logGroupName: `/aws/apigateway/${props.apiName}`,
      retention: props.logRetention,
      removalPolicy: props.removalPolicy,
    });
    this.stage = new apigw.WebSocketStage(this, 'WebSocketStage', {
      webSocketApi: this.api,
      stageName: 'live',
      autoDeploy: true,
      throttle: props.throttle,
      // No query string, no headers: the connect token travels in one of them.
      accessLogSettings: {
        destination: new apigw.LogGroupLogDestination(accessLogs),
        format: AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            ip: '$context.identity.sourceIp',
            requestTime: '$context.requestTimeEpoch',
            routeKey: '$context.routeKey',
            eventType: '$context.eventType',
            connectionId: '$context.connectionId',
            status: '$context.status',
            principal: '$context.authorizer.principalId',
            authorizerError: '$context.authorizer.error',
            integrationError: '$context.integrationErrorMessage',
          }),
        ),
      },
    });
    new CfnOutput(this, 'WebSocketEndpoint', { value: this.stage.url, description: props.endpointDescription });
  }

  /** `POST @connections/{id}` on this API's stage. */
  grantPush(f: RustFunction): void {
    const stack = Stack.of(this);
    f.function.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'PushToConnections',
        actions: ['execute-api:ManageConnections'],
        resources: [stack.formatArn({ service: 'execute-api', resource: this.api.apiId, resourceName: `${this.stage.stageName}/POST/@connections/*` })],
      }),
    );
    const literal = (value: string, token: string) => (Token.isUnresolved(value) ? `<${token}>` : value);
    const apiId = stack.getLogicalId(this.api.node.defaultChild as apigw.CfnApi);
    Validations.of(f.role).acknowledge({
      id:
        `AwsSolutions-IAM5[Resource::arn:${literal(stack.partition, 'AWS::Partition')}:execute-api:` +
        `${literal(stack.region, 'AWS::Region')}:${literal(stack.account, 'AWS::AccountId')}:<${apiId}>/${this.stage.stageName}/POST/@connections/*]`,
      reason: 'Connection ids are made by API Gateway at connect time; the wildcard stays on this API, its stage and POST.',
    });
  }
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
