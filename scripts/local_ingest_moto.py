#!/usr/bin/env python3
"""Creates the dev ingest stream, state table (keys, index and stream from the synthesized
template) and malformed-events topic in a running moto server, with a queue subscribed to the
topic, for running the ingest functions locally:

    moto_server -H 127.0.0.1 -p 5000 &
    python3 scripts/local_ingest_moto.py http://127.0.0.1:5000 [cdk/cdk.out]

Run with the project venv's python (boto3 comes with moto). Prints the topic ARN and the URL of
the queue the malformed reports arrive on.
"""

import pathlib
import sys

import boto3

from moto_local import create_table, resource

STREAM = "eventfabric-dev-ingest"
TABLE = "eventfabric-dev-ingest-state"
TOPIC = "eventfabric-dev-ingest-malformed"


def main() -> None:
    endpoint = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:5000"
    outdir = pathlib.Path(sys.argv[2] if len(sys.argv) > 2 else pathlib.Path(__file__).parent.parent / "cdk/cdk.out")
    session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="eu-west-1")
    stream = resource(outdir, "IngestStateful", "AWS::Kinesis::Stream", "Name", STREAM)
    session.client("kinesis", endpoint_url=endpoint).create_stream(StreamName=STREAM, ShardCount=stream["ShardCount"])
    table = resource(outdir, "IngestStateful", "AWS::DynamoDB::Table", "TableName", TABLE)
    create_table(session.client("dynamodb", endpoint_url=endpoint), table)
    resource(outdir, "IngestStateful", "AWS::SNS::Topic", "TopicName", TOPIC)
    sns = session.client("sns", endpoint_url=endpoint)
    sqs = session.client("sqs", endpoint_url=endpoint)
    topic = sns.create_topic(Name=TOPIC)["TopicArn"]
    url = sqs.create_queue(QueueName="ingest-malformed-reports")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    print(topic)
    print(url)


if __name__ == "__main__":
    main()
