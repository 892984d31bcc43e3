import { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import type { DeliveryConfig, EnvName } from '../config';
import { resourceName } from '../naming';

/** The issuer of GitHub Actions' OIDC tokens, and the audience configure-aws-credentials asks for. */
export const GITHUB_OIDC_HOST = 'token.actions.githubusercontent.com';
export const GITHUB_OIDC_AUDIENCE = 'sts.amazonaws.com';

export interface DeliveryRolesProps {
  readonly envName: EnvName;
  readonly settings: DeliveryConfig;
}

/**
 * What the promotion workflow (`.github/workflows/ci.yml`) assumes in this environment's
 * account, through GitHub's OIDC provider (no stored keys):
 *
 * - `eventfabric-<env>-deploy`: only jobs running in the GitHub environment `<env>` (token
 *   subject `repo:<owner>/<repo>:environment:<env>`; prod's environment has required
 *   reviewers), and it may do one thing: assume the account's CDK bootstrap roles (deploy,
 *   file publishing, lookup), which do the deploying. A job outside the environment, another
 *   branch's workflow or another repository cannot assume it.
 * - `eventfabric-<env>-diff`: pull request jobs (`repo:<owner>/<repo>:pull_request`), allowed
 *   to assume the bootstrap lookup role only (read-only), for `cdk diff` on the pull request.
 */
export class DeliveryRoles extends Construct {
  readonly deployRole: iam.Role;
  readonly diffRole: iam.Role;

  constructor(scope: Construct, id: string, props: DeliveryRolesProps) {
    super(scope, id);
    const { envName, settings } = props;
    if (!/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/.test(settings.githubRepository)) {
      throw new Error(`delivery.githubRepository must be 'owner/name', not '${settings.githubRepository}'`);
    }
    if (!/^[a-z0-9]{1,10}$/.test(settings.bootstrapQualifier)) {
      throw new Error(`delivery.bootstrapQualifier must be 1-10 lowercase letters or digits, not '${settings.bootstrapQualifier}'`);
    }
    const stack = Stack.of(this);
    const provider =
      settings.oidcProvider === 'create'
        ? // AWS::IAM::OIDCProvider itself (no custom resource function); AWS checks GitHub's
          // certificate against its own trust store, so no thumbprint is pinned.
          new iam.OidcProviderNative(this, 'GitHubOidc', {
            url: `https://${GITHUB_OIDC_HOST}`,
            clientIds: [GITHUB_OIDC_AUDIENCE],
          })
        : iam.OidcProviderNative.fromOidcProviderArn(
            this,
            'GitHubOidc',
            stack.formatArn({ service: 'iam', region: '', resource: 'oidc-provider', resourceName: GITHUB_OIDC_HOST }),
          );
    const principal = (subject: string) =>
      new iam.OpenIdConnectPrincipal(provider, {
        StringEquals: {
          [`${GITHUB_OIDC_HOST}:aud`]: GITHUB_OIDC_AUDIENCE,
          [`${GITHUB_OIDC_HOST}:sub`]: subject,
        },
      });
    const bootstrapRole = (kind: string) =>
      stack.formatArn({
        service: 'iam',
        region: '',
        resource: 'role',
        resourceName: `cdk-${settings.bootstrapQualifier}-${kind}-role-${stack.account}-${stack.region}`,
      });

    this.deployRole = new iam.Role(this, 'DeployRole', {
      roleName: resourceName(envName, 'deploy'),
      description: `GitHub Actions deploys of eventfabric ${envName} (environment '${envName}' of ${settings.githubRepository} only)`,
      assumedBy: principal(`repo:${settings.githubRepository}:environment:${envName}`),
      maxSessionDuration: undefined,
      inlinePolicies: {
        AssumeBootstrapRoles: new iam.PolicyDocument({
          statements: [
            new iam.PolicyStatement({
              sid: 'AssumeCdkBootstrapRoles',
              actions: ['sts:AssumeRole', 'sts:TagSession'],
              resources: ['deploy', 'file-publishing', 'lookup'].map(bootstrapRole),
            }),
          ],
        }),
      },
    });
    this.diffRole = new iam.Role(this, 'DiffRole', {
      roleName: resourceName(envName, 'diff'),
      description: `cdk diff of eventfabric ${envName} on pull requests of ${settings.githubRepository} (read-only)`,
      assumedBy: principal(`repo:${settings.githubRepository}:pull_request`),
      inlinePolicies: {
        AssumeLookupRole: new iam.PolicyDocument({
          statements: [
            new iam.PolicyStatement({
              sid: 'AssumeCdkLookupRole',
              actions: ['sts:AssumeRole', 'sts:TagSession'],
              resources: [bootstrapRole('lookup')],
            }),
          ],
        }),
      },
    });
  }
}
