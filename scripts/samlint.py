#!/usr/bin/env python3
"""Lints SAM templates as CloudFormation would deploy them: the SAM transform (aws-sam-translator,
through the SAM CLI's own validator, the code `sam validate` runs) expands the serverless
resources, then cfn-lint checks the expanded CloudFormation against the resource schemas.

cfn-lint alone no longer applies the SAM transform (since 1.5x it checks AWS::Serverless::*
against SAM's schemas, which allow three topics in one Kafka event), and `sam validate --lint`
only runs that cfn-lint. This script fails when the transform leaves any AWS::Serverless::
resource behind, so a lint that passes proves the transform ran.

  .venv-sam/bin/python scripts/samlint.py TEMPLATE...
      exit 0 when every template transforms and has no cfn-lint errors
  .venv-sam/bin/python scripts/samlint.py --refused TEMPLATE...
      exit 0 when every template is refused, and its refusal says what the template's
      "# lint: <text>" line says (fixtures/aws-rejects)
"""
import logging
import os
import sys

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("SAM_CLI_TELEMETRY", "0")

from cfnlint.api import lint  # noqa: E402
from cfnlint.config import ManualArgs  # noqa: E402
from samcli.commands.validate.lib.exceptions import InvalidSamDocumentException  # noqa: E402
from samcli.lib.translate.sam_template_validator import SamTemplateValidator  # noqa: E402
from samcli.yamlhelper import yaml_dump, yaml_parse  # noqa: E402


# The translator's metrics have no publisher here; it warns about them at exit.
logging.getLogger("samtranslator.metrics").setLevel(logging.ERROR)


class NoManagedPolicies:
    """The templates name no AWS managed policies; the real loader would call IAM."""

    def load(self):
        return {}


def refusals(path):
    """What AWS's tools refuse in a template: a list of messages, empty when it passes."""
    with open(path) as f:
        template = yaml_parse(f.read())
    try:
        out = SamTemplateValidator(template, NoManagedPolicies(), region=os.environ["AWS_DEFAULT_REGION"]) \
            .get_translated_template_if_valid()
    except InvalidSamDocumentException as e:
        return [f"the SAM transform refuses it: {e}"]
    expanded = yaml_parse(out)
    left = sorted(k for k, r in expanded.get("Resources", {}).items()
                  if str(r.get("Type", "")).startswith("AWS::Serverless::"))
    if left or "Transform" in expanded:
        return [f"the SAM transform did not run: {left or 'Transform still declared'}"]
    # Errors refuse; warnings are printed. W1030 is left out: it resolves each Ref to its
    # parameter's default, and the defaults of the variant not deployed (an empty
    # KafkaBootstrapServers when MSK is used) are empty on purpose.
    matches = lint(yaml_dump(expanded), config=ManualArgs(regions=[os.environ["AWS_DEFAULT_REGION"]],
                                                          ignore_checks=["W1030"]))
    for m in matches:
        if not m.rule.id.startswith("E"):
            print(f"{path} (after the SAM transform): {m.rule.id} {m.message}")
    return [f"cfn-lint, after the SAM transform: {m.rule.id} {m.message} (line {m.linenumber})"
            for m in matches if m.rule.id.startswith("E")]


def expected(path):
    with open(path) as f:
        for line in f:
            if line.startswith("# lint: "):
                return line[len("# lint: "):].strip()
    return None


def main():
    args = sys.argv[1:]
    refused = args[:1] == ["--refused"]
    paths = args[1:] if refused else args
    if not paths:
        sys.exit(__doc__)
    failed = 0
    for path in paths:
        found = refusals(path)
        for r in found:
            print(f"{path}: {r}")
        if not refused:
            if found:
                failed += 1
            else:
                print(f"{path}: transformed and linted")
            continue
        want = expected(path)
        if want is None:
            print(f"{path}: no '# lint:' line naming why it must be refused")
            failed += 1
        elif not found:
            print(f"{path}: passed the lint, which AWS would refuse")
            failed += 1
        elif not any(want in r for r in found):
            print(f"{path}: refused, but not saying '{want}'")
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
