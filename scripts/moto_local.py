"""What the local moto scripts share: a resource of a synthesized dev template, and a table
created in moto as the template declares it (keys, indexes, stream)."""

import json
import pathlib
import sys


def resource(outdir: pathlib.Path, stack: str, kind: str, key: str, value: str) -> dict:
    """The properties of the `kind` resource whose `key` is `value` in the dev `stack` template."""
    for template in sorted(outdir.glob(f"assembly-Dev/*{stack}*.template.json")):
        for r in json.loads(template.read_text())["Resources"].values():
            if r["Type"] == kind and r["Properties"].get(key) == value:
                return r["Properties"]
    sys.exit(f"no {kind} {value} under {outdir}: run scripts/synth.sh dev first")


def create_table(dynamodb, props: dict) -> None:
    """The synthesized table in moto, on demand."""
    args = {
        "TableName": props["TableName"],
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": "PAY_PER_REQUEST",
    }
    indexes = [
        {"IndexName": i["IndexName"], "KeySchema": i["KeySchema"], "Projection": i["Projection"]}
        for i in props.get("GlobalSecondaryIndexes", [])
    ]
    if indexes:
        args["GlobalSecondaryIndexes"] = indexes
    if "StreamSpecification" in props:
        args["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": props["StreamSpecification"]["StreamViewType"]}
    dynamodb.create_table(**args)
