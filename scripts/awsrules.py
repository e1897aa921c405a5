#!/usr/bin/env python3
"""Extracts from botocore's published AWS API models the constraints of every property `fin up`
emulates (Lambda event source mappings and function settings, S3 notifications, EventBridge rules
and targets, API Gateway v2 routes and authorizers) into shared/awsrules/constraints.json, which
the Go runtime embeds, with the two Lambda function rules the API model does not carry, from
cfn-lint's resource schema extensions. botocore and cfn-lint are the releases requirements-sam.txt
pins.

  .venv-sam/bin/python scripts/awsrules.py          rewrite the file
  .venv-sam/bin/python scripts/awsrules.py --check  fail when the file is stale (make test)
"""
import gzip
import json
import os
import re
import sys

import botocore
import cfnlint
from cfnlint.version import __version__ as cfnlint_version

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "shared", "awsrules", "constraints.json")

# (service, API version, operation, member path): a dot walks into a structure, through lists.
WANTED = [
    ("lambda", "2015-03-31", "CreateEventSourceMapping", "Topics"),
    ("lambda", "2015-03-31", "CreateEventSourceMapping", "BatchSize"),
    ("lambda", "2015-03-31", "CreateEventSourceMapping", "MaximumBatchingWindowInSeconds"),
    ("lambda", "2015-03-31", "CreateEventSourceMapping", "StartingPosition"),
    ("lambda", "2015-03-31", "CreateEventSourceMapping", "FunctionResponseTypes"),
    ("lambda", "2015-03-31", "CreateEventSourceMapping", "AmazonManagedKafkaEventSourceConfig.ConsumerGroupId"),
    ("lambda", "2015-03-31", "CreateEventSourceMapping", "SelfManagedKafkaEventSourceConfig.ConsumerGroupId"),
    ("lambda", "2015-03-31", "CreateEventSourceMapping", "ScalingConfig.MaximumConcurrency"),
    ("lambda", "2015-03-31", "PutFunctionConcurrency", "ReservedConcurrentExecutions"),
    ("lambda", "2015-03-31", "CreateFunction", "Timeout"),
    ("lambda", "2015-03-31", "CreateFunction", "Environment.Variables"),
    ("s3", "2006-03-01", "PutBucketNotificationConfiguration",
     "NotificationConfiguration.LambdaFunctionConfigurations.Events"),
    ("s3", "2006-03-01", "PutBucketNotificationConfiguration",
     "NotificationConfiguration.LambdaFunctionConfigurations.Filter.Key.FilterRules.Name"),
    ("s3", "2006-03-01", "PutBucketNotificationConfiguration",
     "NotificationConfiguration.LambdaFunctionConfigurations.Filter.Key.FilterRules.Value"),
    ("events", "2015-10-07", "PutRule", "ScheduleExpression"),
    ("events", "2015-10-07", "PutRule", "Name"),
    ("events", "2015-10-07", "PutRule", "Description"),
    ("events", "2015-10-07", "PutTargets", "Targets.Input"),
    ("apigatewayv2", "2018-11-29", "CreateRoute", "AuthorizationType"),
    ("apigatewayv2", "2018-11-29", "CreateRoute", "AuthorizationScopes"),
    ("apigatewayv2", "2018-11-29", "CreateAuthorizer", "AuthorizerType"),
    ("apigatewayv2", "2018-11-29", "CreateAuthorizer", "IdentitySource"),
    ("apigatewayv2", "2018-11-29", "CreateAuthorizer", "JwtConfiguration.Issuer"),
    ("apigatewayv2", "2018-11-29", "CreateAuthorizer", "JwtConfiguration.Audience"),
]

KEPT = ("type", "min", "max", "pattern", "enum")

# cfn-lint schema extensions: (file under cfnlint/data/schemas/extensions, JSON path, constraint).
CFNLINT = {
    # Timeout above 900 s only with Lambda Managed Instances (CapacityProviderConfig).
    "cfnlint.AWS::Lambda::Function.Timeout": (
        "aws_lambda_function/capacity_provider_timeout.json", ["then", "properties", "Timeout", "maximum"],
        lambda v: {"shape": "Timeout without CapacityProviderConfig", "type": "integer", "max": v}),
    # Environment variable names Lambda reserves for itself.
    "cfnlint.AWS::Lambda::Function.Environment.Variables": (
        "aws_lambda_function/environment_variable_keys.json", ["propertyNames", "not", "enum"],
        lambda v: {"shape": "reserved environment variable names", "type": "map",
                   "key": {"shape": "EnvironmentVariableName", "type": "string", "reserved": sorted(v)},
                   "value": {"shape": "EnvironmentVariableValue", "type": "string"}}),
}


def pinned_version(package):
    with open(os.path.join(ROOT, "requirements-sam.txt")) as f:
        for line in f:
            m = re.match(r"\s*" + re.escape(package) + r"==([^\s#]+)", line)
            if m:
                return m.group(1)
    sys.exit(f"requirements-sam.txt pins no {package} version ({package}==X)")


def model(service, version):
    base = os.path.join(os.path.dirname(botocore.__file__), "data", service, version, "service-2.json")
    if os.path.exists(base):
        with open(base) as f:
            return json.load(f)
    with gzip.open(base + ".gz") as f:
        return json.load(f)


def describe(shapes, name):
    """The constraints of one shape, with those of a list's members and a map's keys and values."""
    shape = shapes[name]
    out = {"shape": name}
    out.update({k: shape[k] for k in KEPT if k in shape})
    if shape["type"] == "list":
        out["member"] = describe(shapes, shape["member"]["shape"])
    elif shape["type"] == "map":
        out["key"] = describe(shapes, shape["key"]["shape"])
        out["value"] = describe(shapes, shape["value"]["shape"])
    return out


def extract():
    rules = {}
    for service, version, op, path in WANTED:
        m = model(service, version)
        shapes = m["shapes"]
        name = m["operations"][op]["input"]["shape"]
        for part in path.split("."):
            shape = shapes[name]
            while shape["type"] == "list":
                name = shape["member"]["shape"]
                shape = shapes[name]
            name = shape["members"][part]["shape"]
        rules[f"{service}.{op}.{path}"] = describe(shapes, name)
    for key, (name, path, make) in CFNLINT.items():
        with open(os.path.join(os.path.dirname(cfnlint.__file__), "data", "schemas", "extensions", name)) as f:
            value = json.load(f)
        for part in path:
            value = value[part]
        rules[key] = make(value)
    return {"sources": {"botocore": botocore.__version__, "cfnlint": cfnlint_version}, "constraints": rules}


def main():
    want = pinned_version("botocore")
    for package, have in (("botocore", botocore.__version__), ("cfn-lint", cfnlint_version)):
        if have != pinned_version(package):
            sys.exit(f"{package} {have} is installed, requirements-sam.txt pins {pinned_version(package)}: "
                     "run scripts/venv.sh sam")
    want = f"botocore {want} and cfn-lint {pinned_version('cfn-lint')}"
    text = json.dumps(extract(), indent=1, sort_keys=True) + "\n"
    if sys.argv[1:] == ["--check"]:
        with open(OUT) as f:
            if f.read() != text:
                sys.exit(f"{os.path.relpath(OUT, ROOT)} is stale against {want}: "
                         "run .venv-sam/bin/python scripts/awsrules.py and commit it")
        print(f"{os.path.relpath(OUT, ROOT)} matches {want}")
        return
    with open(OUT, "w") as f:
        f.write(text)
    print(f"wrote {os.path.relpath(OUT, ROOT)} from {want}")


if __name__ == "__main__":
    main()
