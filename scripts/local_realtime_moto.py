#!/usr/bin/env python3
"""Creates the dev app bus, the realtime app, connections and subscriptions tables (keys, indexes and TTL
from the synthesized template), the token secret (a local-only value) and a queue receiving
every event of the app bus, in a running moto server, for running the realtime functions
locally:

    moto_server -H 127.0.0.1 -p 5000 &
    python3 scripts/local_realtime_moto.py http://127.0.0.1:5000 [cdk/cdk.out]

Run with the project venv's python (boto3 comes with moto). Prints the queue URL the follow-up
events arrive on.
"""

import json
import pathlib
import sys

import boto3

from moto_local import create_table, resource

BUS = "eventfabric-dev-app"
TABLES = ["eventfabric-dev-realtime-app", "eventfabric-dev-realtime-connections", "eventfabric-dev-realtime-subscriptions"]
SECRET = "eventfabric-dev-realtime-token-secret"
LOCAL_ONLY_SECRET = "eventfabric-local-only-realtime-secret-0001"


def main() -> None:
    endpoint = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:5000"
    outdir = pathlib.Path(sys.argv[2] if len(sys.argv) > 2 else pathlib.Path(__file__).parent.parent / "cdk/cdk.out")
    session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="eu-west-1")
    dynamodb = session.client("dynamodb", endpoint_url=endpoint)
    for name in TABLES:
        create_table(dynamodb, resource(outdir, "RealtimeStateful", "AWS::DynamoDB::Table", "TableName", name))
    session.client("secretsmanager", endpoint_url=endpoint).create_secret(Name=SECRET, SecretString=LOCAL_ONLY_SECRET)
    events = session.client("events", endpoint_url=endpoint)
    sqs = session.client("sqs", endpoint_url=endpoint)
    events.create_event_bus(Name=BUS)
    url = sqs.create_queue(QueueName="app-bus-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="local-all-app-events", EventBusName=BUS, EventPattern=json.dumps({"source": [{"prefix": "bayon.coagent."}]}))
    events.put_targets(Rule="local-all-app-events", EventBusName=BUS, Targets=[{"Id": "queue", "Arn": arn}])
    print(url)


if __name__ == "__main__":
    main()
