#!/usr/bin/env python3
"""Creates the dev tunnel's pending requests and connections tables (keys, stream, indexes and
TTL from the synthesized template), the rollout parameter, the bodies bucket and the token
secret (a local-only value) in a running moto server, for running the tunnel functions locally:

    moto_server -H 127.0.0.1 -p 5000 &
    python3 scripts/local_tunnel_moto.py http://127.0.0.1:5000 [cdk/cdk.out]

Run with the project venv's python (boto3 comes with moto). Prints the token secret's ARN.
"""

import json
import pathlib
import sys

import boto3

from moto_local import create_table, resource

TABLES = ["eventfabric-dev-tunnel-pending", "eventfabric-dev-tunnel-connections"]
SECRET = "eventfabric-dev-tunnel-token-secret"
LOCAL_ONLY_SECRET = "eventfabric-local-only-tunnel-secret-00001"
BUCKET = "eventfabric-dev-tunnel-bodies-local"
ROLLOUT = "/eventfabric/dev/tunnel/rollout"


def main() -> None:
    endpoint = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:5000"
    outdir = pathlib.Path(sys.argv[2] if len(sys.argv) > 2 else pathlib.Path(__file__).parent.parent / "cdk/cdk.out")
    session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="eu-west-1")
    dynamodb = session.client("dynamodb", endpoint_url=endpoint)
    for name in TABLES:
        create_table(dynamodb, resource(outdir, "TunnelStateful", "AWS::DynamoDB::Table", "TableName", name))
    parameter = resource(outdir, "TunnelStateful", "AWS::SSM::Parameter", "Name", ROLLOUT)
    session.client("ssm", endpoint_url=endpoint).put_parameter(Name=ROLLOUT, Value=parameter["Value"], Type="String")
    session.client("s3", endpoint_url=endpoint).create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    arn = session.client("secretsmanager", endpoint_url=endpoint).create_secret(Name=SECRET, SecretString=LOCAL_ONLY_SECRET)["ARN"]
    print(arn)


if __name__ == "__main__":
    main()
