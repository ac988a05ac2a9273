"""Checks cfn-lint cannot make on a SAM template (run by scripts/check-infra.sh).

cfn-lint validates SAM resources against schemas only; it neither runs the SAM transform nor
knows whether an IAM action exists. This script:
  1. runs the real SAM transform (aws-sam-translator), which rejects what `sam deploy` would
     (unknown event properties, bad auth settings), and writes the plain CloudFormation result
     so cfn-lint can check the generated resources too;
  2. checks every IAM action in the result against cfn-lint's catalogue of IAM actions, so a
     misspelt or nonexistent action (e.g. dynamodb:TransactWriteItems, which IAM authorizes per
     item action) cannot silently grant nothing;
  3. rejects wildcard actions in Allow statements (least privilege: name the action);
  4. checks each function gets exactly the ESPBRIDGE_* variables its code reads
     (infra/checks/function-env.json, which a test in shared/app checks against the code).

Usage: python verify_sam.py <template.yaml> <translated.json>
"""

import json
import os
import sys
from importlib import resources

from cfnlint.decode import decode
from samtranslator.public.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform

# What `sam package` does to local code paths; the transform accepts only S3 locations.
PLACEHOLDER_CODE_URI = "s3://placeholder-bucket/code.zip"


class NoManagedPolicies:
    """The template attaches managed policies by ARN only, so no name lookup (and no AWS call)."""

    def load(self):
        return {}


def load_template(path):
    template, errors = decode(path)
    if errors:
        for error in errors:
            print(f"{path}: {error}", file=sys.stderr)
        sys.exit(2)
    # Plain dicts/strings (the decoder returns position-tracking subclasses).
    template = json.loads(json.dumps(template))
    function_globals = template.get("Globals", {}).get("Function", {})
    if isinstance(function_globals.get("CodeUri"), str):
        function_globals["CodeUri"] = PLACEHOLDER_CODE_URI
    for resource in template.get("Resources", {}).values():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str):
            props["CodeUri"] = PLACEHOLDER_CODE_URI
    return template


def statements(node, where="Resources"):
    """Yields (location, statement) for every IAM policy statement in the template."""
    if isinstance(node, dict):
        stmts = node.get("Statement")
        if isinstance(stmts, list) and "Version" in node:
            for i, stmt in enumerate(stmts):
                if isinstance(stmt, dict):
                    yield f"{where}/Statement/{i}", stmt
        for key, value in node.items():
            yield from statements(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from statements(value, f"{where}/{i}")


def iam_catalogue():
    path = resources.files("cfnlint") / "data" / "AdditionalSpecs" / "Policies.json"
    data = json.loads(path.read_text())
    return {prefix: set(spec.get("Actions", {})) for prefix, spec in data.items()}


def check_actions(template):
    catalogue = iam_catalogue()
    problems = []
    for where, stmt in statements(template.get("Resources", {})):
        actions = stmt.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        for action in actions:
            if not isinstance(action, str):
                problems.append(f"{where}: action is not a literal string: {action!r}")
                continue
            if "*" in action:
                if stmt.get("Effect") == "Allow":
                    problems.append(f"{where}: wildcard action {action} in an Allow statement")
                continue
            prefix, _, name = action.partition(":")
            if name.lower() not in catalogue.get(prefix, set()):
                problems.append(f"{where}: {action} is not an IAM action")
    return problems


def check_function_env(template, expected_path):
    with open(expected_path, encoding="utf-8") as f:
        expected = {k: set(v) for k, v in json.load(f).items() if not k.startswith("_")}
    problems = []
    seen = set()
    for name, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        binary = resource.get("Metadata", {}).get("BuildProperties", {}).get("Binary")
        variables = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
        ours = {k for k in variables if k.startswith("ESPBRIDGE_")}
        if binary not in expected:
            problems.append(f"{name}: binary {binary!r} is not in function-env.json")
            continue
        seen.add(binary)
        if ours != expected[binary]:
            missing = sorted(expected[binary] - ours)
            extra = sorted(ours - expected[binary])
            problems.append(f"{name} ({binary}): missing {missing}, not read by the code {extra}")
    for binary in sorted(set(expected) - seen):
        problems.append(f"function-env.json names {binary}, which the template does not build")
    return problems


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    source, target = sys.argv[1], sys.argv[2]
    env_problems = check_function_env(
        load_template(source), os.path.join(os.path.dirname(os.path.abspath(__file__)), "function-env.json")
    )
    for problem in env_problems:
        print(f"environment: {problem}", file=sys.stderr)
    if env_problems:
        sys.exit(1)
    # The transform resolves AWS::Region; any region will do, no AWS call is made.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    try:
        translated = transform(load_template(source), {}, NoManagedPolicies())
    except InvalidDocumentException as exc:
        for cause in exc.causes:
            print(f"SAM transform: {cause.message}", file=sys.stderr)
        sys.exit(1)
    with open(target, "w", encoding="utf-8") as out:
        json.dump(translated, out, indent=1)
    problems = check_actions(translated)
    for problem in problems:
        print(f"IAM: {problem}", file=sys.stderr)
    if problems:
        sys.exit(1)
    count = sum(1 for _ in statements(translated.get("Resources", {})))
    print(f"SAM transform OK ({len(translated['Resources'])} resources); {count} IAM statements use only known, named actions")


if __name__ == "__main__":
    main()
