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
     (infra/checks/function-env.json, which a test in shared/app checks against the code);
  5. checks each function's role grants exactly what its code does in the drop bucket: every
     prefix it reads (s3:GetObject) or writes (s3:PutObject), s3:ListBucket on the bucket when
     it acts on a missing object, and nothing else there (infra/checks/function-s3.json, which
     shared/app/tests/function_s3.rs checks against the code).

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


S3_ACCESS = {"s3:getobject": "read", "s3:putobject": "write"}
S3_LIST = "s3:listbucket"


def _as_list(value):
    return value if isinstance(value, list) else [value]


def role_statements(template, role):
    """(where, statement) of every policy a role has inline or from an AWS::IAM::(Managed)Policy
    of the template that names it."""
    resources = template.get("Resources", {})
    for i, policy in enumerate(resources.get(role, {}).get("Properties", {}).get("Policies", []) or []):
        doc = policy.get("PolicyDocument", {}) if isinstance(policy, dict) else {}
        for j, stmt in enumerate(doc.get("Statement", []) or []):
            yield f"{role}/Policies/{i}/Statement/{j}", stmt
    for name, resource in resources.items():
        if resource.get("Type") not in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            continue
        props = resource.get("Properties", {})
        if {"Ref": role} not in _as_list(props.get("Roles", [])):
            continue
        for j, stmt in enumerate(props.get("PolicyDocument", {}).get("Statement", []) or []):
            yield f"{name}/Statement/{j}", stmt


def s3_target(resource, bucket):
    """What an IAM resource of a statement names in `bucket`: ("bucket", None) for the bucket,
    ("objects", "<prefix>") for keys, ("other", None) for something else; None when it cannot
    tell (a wildcard, a Join, another form that could name the bucket)."""
    if resource == {"Fn::GetAtt": [bucket, "Arn"]} or resource == {"Fn::GetAtt": f"{bucket}.Arn"}:
        return ("bucket", None)
    if isinstance(resource, dict) and set(resource) == {"Fn::GetAtt"}:
        return ("other", None)
    sub = resource.get("Fn::Sub") if isinstance(resource, dict) and set(resource) == {"Fn::Sub"} else None
    if isinstance(sub, list) and sub and isinstance(sub[0], str):
        sub = sub[0]
    if isinstance(sub, str):
        for head in (f"${{{bucket}.Arn}}", f"arn:${{AWS::Partition}}:s3:::${{{bucket}}}"):
            if sub == head:
                return ("bucket", None)
            if sub.startswith(head + "/"):
                return ("objects", sub[len(head) + 1 :])
        return ("other", None) if ":s3:::" not in sub and "*" not in sub else None
    if isinstance(resource, str):
        return ("other", None) if ":s3:::" not in resource and "*" not in resource else None
    return None


def check_function_s3(template, expected_path):
    with open(expected_path, encoding="utf-8") as f:
        raw = json.load(f)
    bucket = raw.get("_bucket", "DropBucket")
    expected = {k: v for k, v in raw.items() if not k.startswith("_")}
    resources = template.get("Resources", {})
    problems = []
    seen = set()
    for name, resource in resources.items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        binary = resource.get("Metadata", {}).get("BuildProperties", {}).get("Binary")
        if binary not in expected:
            problems.append(f"{name}: binary {binary!r} is not in function-s3.json")
            continue
        seen.add(binary)
        want = expected[binary]
        role_ref = resource.get("Properties", {}).get("Role")
        role = None
        if isinstance(role_ref, dict) and "Fn::GetAtt" in role_ref:
            att = role_ref["Fn::GetAtt"]
            att = att.split(".", 1) if isinstance(att, str) else att
            if len(att) == 2 and att[1] == "Arn" and resources.get(att[0], {}).get("Type") == "AWS::IAM::Role":
                role = att[0]
        if role is None:
            problems.append(f"{name} ({binary}): its Role is not !GetAtt <an AWS::IAM::Role of this template>.Arn, so its S3 grants cannot be checked")
            continue
        granted = {"read": set(), "write": set()}
        lists = False
        for where, stmt in role_statements(template, role):
            if not isinstance(stmt, dict) or stmt.get("Effect") != "Allow":
                continue
            if "NotAction" in stmt or "NotResource" in stmt:
                problems.append(f"{where}: NotAction/NotResource in an Allow statement cannot be checked")
                continue
            actions = [a.lower() for a in _as_list(stmt.get("Action", [])) if isinstance(a, str)]
            s3_actions = [a for a in actions if a.startswith("s3:")]
            if not s3_actions:
                continue
            for res in _as_list(stmt.get("Resource", [])):
                target = s3_target(res, bucket)
                if target is None:
                    problems.append(f"{where}: cannot tell which part of {bucket} {res!r} grants {', '.join(s3_actions)} on; name the bucket (!GetAtt {bucket}.Arn) or a prefix (!Sub \"${{{bucket}.Arn}}/<prefix>/*\")")
                    continue
                kind, prefix = target
                if kind == "other":
                    continue
                for action in s3_actions:
                    if kind == "objects" and action in S3_ACCESS:
                        granted[S3_ACCESS[action]].add(prefix)
                    elif kind == "bucket" and action == S3_LIST:
                        if "Condition" in stmt:
                            problems.append(f"{where}: s3:ListBucket on {bucket} with a Condition; S3 answers a missing key with 404 only for ListBucket on the bucket")
                        lists = True
                    else:
                        on = f"{bucket}/{prefix}" if kind == "objects" else bucket
                        problems.append(f"{name} ({binary}): {role} grants {action} on {on}, which the code does not use (function-s3.json)")
        for access, action in (("read", "s3:GetObject"), ("write", "s3:PutObject")):
            wanted = set(want.get(access, []))
            for prefix in sorted(wanted - granted[access]):
                problems.append(
                    f"{name} ({binary}): the code {access}s {prefix} in {bucket}, but {role} does not grant {action} "
                    f"on it: add {action} on !Sub \"${{{bucket}.Arn}}/{prefix}\""
                )
            for prefix in sorted(granted[access] - wanted):
                problems.append(
                    f"{name} ({binary}): {role} grants {action} on {bucket}/{prefix}, which the code does not {access} "
                    f"(function-s3.json): remove it, or list it if the code now does"
                )
        if want.get("not_found", False) and not lists:
            problems.append(
                f"{name} ({binary}): the code acts on a missing object in {bucket}, but {role} does not grant "
                f"s3:ListBucket on !GetAtt {bucket}.Arn, so S3 would answer 403 instead of 404"
            )
        if lists and not want.get("not_found", False):
            problems.append(f"{name} ({binary}): {role} grants s3:ListBucket on {bucket}, which the code does not need (function-s3.json)")
    for binary in sorted(set(expected) - seen):
        problems.append(f"function-s3.json names {binary}, which the template does not build")
    return problems


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    source, target = sys.argv[1], sys.argv[2]
    here = os.path.dirname(os.path.abspath(__file__))
    env_problems = check_function_env(load_template(source), os.path.join(here, "function-env.json"))
    for problem in env_problems:
        print(f"environment: {problem}", file=sys.stderr)
    s3_problems = check_function_s3(load_template(source), os.path.join(here, "function-s3.json"))
    for problem in s3_problems:
        print(f"S3: {problem}", file=sys.stderr)
    if env_problems or s3_problems:
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
    print("each function's environment and drop-bucket grants match what its code reads and writes")


if __name__ == "__main__":
    main()
