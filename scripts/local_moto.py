#!/usr/bin/env python3
"""Creates the dev session bus, the session consumer queue and the consumer rule (its pattern
taken from the synthesized dev template), the forward state table (its key schema and TTL from
the template), the session token secret (the local-only value the fixture's token is signed
with) and the redaction key secret in a running moto server, for local runs:

    moto_server -H 127.0.0.1 -p 5000 &
    python3 scripts/local_moto.py http://127.0.0.1:5000 [cdk/cdk.out]

Run with the project venv's python (boto3 comes with moto). Prints the queue URL to poll.
"""

import json
import pathlib
import sys

import boto3

BUS = "eventfabric-dev-session"
RULE = "eventfabric-dev-session-consumer"
TABLE = "eventfabric-dev-forward-state"
SECRET = "eventfabric-dev-session-token-secret"
LOCAL_SECRET = "eventfabric-local-only-session-secret-0001"
REDACTION_SECRET = "eventfabric-dev-redaction-key"
LOCAL_REDACTION_SECRET = "eventfabric-local-only-redaction-key-0001"


def state_table(outdir: pathlib.Path) -> dict:
    for template in sorted(outdir.glob("assembly-Dev/*Stateful*.template.json")):
        for resource in json.loads(template.read_text())["Resources"].values():
            if resource["Type"] == "AWS::DynamoDB::Table" and resource["Properties"].get("TableName") == TABLE:
                return resource["Properties"]
    sys.exit(f"no {TABLE} table under {outdir}: run scripts/synth.sh dev first")


def consumer_pattern(outdir: pathlib.Path) -> str:
    for template in sorted(outdir.glob("assembly-Dev/*Stateless*.template.json")):
        for resource in json.loads(template.read_text())["Resources"].values():
            if resource["Type"] == "AWS::Events::Rule" and resource["Properties"].get("Name") == RULE:
                return json.dumps(resource["Properties"]["EventPattern"])
    sys.exit(f"no {RULE} rule under {outdir}: run scripts/synth.sh dev first")


def main() -> None:
    endpoint = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:5000"
    outdir = pathlib.Path(sys.argv[2] if len(sys.argv) > 2 else pathlib.Path(__file__).parent.parent / "cdk/cdk.out")
    session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="eu-west-1")
    events = session.client("events", endpoint_url=endpoint)
    sqs = session.client("sqs", endpoint_url=endpoint)
    events.create_event_bus(Name=BUS)
    url = sqs.create_queue(QueueName="eventfabric-dev-session-consumer")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=RULE, EventBusName=BUS, EventPattern=consumer_pattern(outdir))
    events.put_targets(Rule=RULE, EventBusName=BUS, Targets=[{"Id": "consumer", "Arn": arn}])
    table = state_table(outdir)
    dynamodb = session.client("dynamodb", endpoint_url=endpoint)
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=table["KeySchema"],
        AttributeDefinitions=table["AttributeDefinitions"],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(TableName=TABLE, TimeToLiveSpecification=table["TimeToLiveSpecification"])
    secrets = session.client("secretsmanager", endpoint_url=endpoint)
    secrets.create_secret(Name=SECRET, SecretString=LOCAL_SECRET)
    secrets.create_secret(Name=REDACTION_SECRET, SecretString=LOCAL_REDACTION_SECRET)
    print(url)


if __name__ == "__main__":
    main()
