#!/usr/bin/env python3
"""Lints a SAM template as CloudFormation would deploy it: the SAM transform (aws-sam-translator,
through the SAM CLI's own validator, the code `sam validate` runs) expands the serverless
resources, then cfn-lint checks the expanded CloudFormation against the resource schemas.

cfn-lint alone no longer applies the SAM transform (since 1.5x it checks AWS::Serverless::*
against SAM's schemas, which allow three topics in one Kafka event), and `sam validate --lint`
only runs that cfn-lint. This script fails when the transform leaves any AWS::Serverless::
resource behind, so a lint that passes proves the transform ran.

  .venv-sam/bin/python scripts/samlint.py TEMPLATE [Name=Value ...]   (parameter overrides)
Exit 0 when the template transforms and has no cfn-lint errors; 1 otherwise, with the reasons.
"""
import json
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("SAM_CLI_TELEMETRY", "0")

from samcli.commands.validate.lib.exceptions import InvalidSamDocumentException  # noqa: E402
from samcli.lib.translate.sam_template_validator import SamTemplateValidator  # noqa: E402
from samcli.yamlhelper import yaml_parse  # noqa: E402


class NoManagedPolicies:
    """The templates name no AWS managed policies; the real loader would call IAM."""

    def load(self):
        return {}


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    path = sys.argv[1]
    overrides = dict(a.split("=", 1) for a in sys.argv[2:])
    with open(path) as f:
        template = yaml_parse(f.read())
    try:
        out = SamTemplateValidator(template, NoManagedPolicies(), region=os.environ["AWS_DEFAULT_REGION"],
                                   parameter_overrides=overrides).get_translated_template_if_valid()
    except InvalidSamDocumentException as e:
        print(f"{path}: the SAM transform refuses it: {e}")
        return 1
    expanded = yaml_parse(out)
    left = sorted(k for k, r in expanded.get("Resources", {}).items()
                  if str(r.get("Type", "")).startswith("AWS::Serverless::"))
    if left or "Transform" in expanded:
        print(f"{path}: the SAM transform did not run: {left or 'Transform still declared'}")
        return 1
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(expanded, f)
    try:
        # Errors fail; warnings are shown. W1030 is left out: it resolves each Ref to its
        # parameter's default, and the defaults of the variant not deployed (an empty
        # KafkaBootstrapServers when MSK is used) are empty on purpose.
        lint = subprocess.run([os.path.join(os.path.dirname(sys.executable), "cfn-lint"), "--non-zero-exit-code",
                               "error", "--ignore-checks", "W1030", "--", f.name], capture_output=True, text=True)
    finally:
        os.unlink(f.name)
    report = (lint.stdout + lint.stderr).replace(f.name, f"{path} (after the SAM transform)").strip()
    if report:
        print(report)
    if lint.returncode != 0:
        print(f"{path}: cfn-lint refuses the transformed template")
        return 1
    print(f"{path}: transformed ({len(expanded['Resources'])} resources) and linted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
