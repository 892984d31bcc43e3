import type { RemovalPolicy } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';

export interface LoggedHttpApiProps {
  /** The API's name; its access log group is `/aws/apigateway/<name>`. */
  readonly apiName: string;
  readonly description: string;
  /** Stage throttling (every route). */
  readonly throttle: { readonly rateLimit: number; readonly burstLimit: number };
  readonly corsPreflight?: apigw.CorsPreflightOptions;
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
  /** Access log fields beyond the common ones (e.g. the SigV4 caller). */
  readonly extraLogFields?: Record<string, string>;
}

/**
 * An HTTP API as every API of the platform has it: no default stage, one throttled `$default`
 * stage with auto-deploy and JSON access logs in a log group with retention. The constructs
 * are `<id>AccessLogs`, `<id>` and `<id>Stage` in `scope` (the forward API's logical ids).
 */
export function loggedHttpApi(scope: Construct, id: string, props: LoggedHttpApiProps): apigw.HttpApi {
  const accessLogs = new logs.LogGroup(scope, `${id}AccessLogs`, {
    logGroupName: `/aws/apigateway/${props.apiName}`,
    retention: props.logRetention,
    removalPolicy: props.removalPolicy,
  });
  const api = new apigw.HttpApi(scope, id, {
    apiName: props.apiName,
    description: props.description,
    createDefaultStage: false,
    ...(props.corsPreflight ? { corsPreflight: props.corsPreflight } : {}),
  });
  new apigw.HttpStage(scope, `${id}Stage`, {
    httpApi: api,
    stageName: '$default',
    autoDeploy: true,
    throttle: props.throttle,
    accessLogSettings: {
      destination: new apigw.LogGroupLogDestination(accessLogs),
      format: AccessLogFormat.custom(
        JSON.stringify({
          requestId: '$context.requestId',
          ip: '$context.identity.sourceIp',
          requestTime: '$context.requestTimeEpoch',
          routeKey: '$context.routeKey',
          status: '$context.status',
          responseLength: '$context.responseLength',
          latencyMs: '$context.responseLatency',
          integrationError: '$context.integrationErrorMessage',
          ...props.extraLogFields,
        }),
      ),
    },
  });
  return api;
}
