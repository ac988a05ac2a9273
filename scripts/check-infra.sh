#!/usr/bin/env bash
# Checks the SAM template offline, with no AWS credentials:
#   1. cfn-lint on infra/template.yaml;
#   2. the real SAM transform, an IAM-action check, each function's environment and drop-bucket
#      grants against what its code does, and cfn-lint on the transformed template
#      (infra/checks/verify_sam.py says why cfn-lint alone is not enough), after the tests of
#      those checks (infra/checks/test_*.py);
#   3. with --checkov, checkov with the skip list below.
# Usage: scripts/check-infra.sh [--checkov]
# Tools live in a private venv (ESPBRIDGE_TOOLS_DIR, default target/tools) and are installed
# only when missing, so repeated runs take seconds and need no network.
set -euo pipefail

CFN_LINT_VERSION="1.58.0"
SAM_TRANSLATOR_VERSION="1.115.0"
CHECKOV_VERSION="3.3.30"

cd "$(dirname "$0")/.."
TEMPLATE="infra/template.yaml"
TOOLS_DIR="${ESPBRIDGE_TOOLS_DIR:-$PWD/target/tools}"
VENV="$TOOLS_DIR/venv-infra"

run_checkov=0
for arg in "$@"; do
  case "$arg" in
    --checkov) run_checkov=1 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg (usage: $0 [--checkov])" >&2; exit 2 ;;
  esac
done

if [ ! -x "$VENV/bin/python" ]; then
  mkdir -p "$TOOLS_DIR"
  python3 -m venv "$VENV"
fi

# Installs <package>==<version> unless exactly that version is already in the venv.
ensure() {
  local pkg="$1" version="$2" have
  # pip show fails for a missing package; that just means "install it".
  have="$({ "$VENV/bin/python" -m pip show "$pkg" 2>/dev/null || true; } | sed -n 's/^Version: //p')"
  if [ "$have" != "$version" ]; then
    echo "installing $pkg==$version into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$pkg==$version"
  fi
}

ensure cfn-lint "$CFN_LINT_VERSION"
ensure aws-sam-translator "$SAM_TRANSLATOR_VERSION"

echo "== cfn-lint $CFN_LINT_VERSION: $TEMPLATE"
"$VENV/bin/cfn-lint" "$TEMPLATE"
echo "cfn-lint: no errors, no warnings"

echo "== tests of the checks (infra/checks/test_*.py)"
PYTHONDONTWRITEBYTECODE=1 "$VENV/bin/python" -m unittest discover --start-directory infra/checks --pattern 'test_*.py'
echo "== SAM transform ($SAM_TRANSLATOR_VERSION), IAM actions, environments, drop-bucket grants"
translated="$(mktemp "${TMPDIR:-/tmp}/espbridge-template.XXXXXX.json")"
trap 'rm -f "$translated"' EXIT
AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}" \
  "$VENV/bin/python" infra/checks/verify_sam.py "$TEMPLATE" "$translated"
echo "== cfn-lint $CFN_LINT_VERSION: transformed template"
"$VENV/bin/cfn-lint" "$translated"
echo "cfn-lint (transformed): no errors, no warnings"

if [ "$run_checkov" -eq 1 ]; then
  ensure checkov "$CHECKOV_VERSION"
  # Deliberate policy choices, each explained in infra/README.md ("Security checks"):
  skips=(
    CKV_AWS_117 # Lambda in a VPC: the functions reach only public ESP APIs and AWS endpoints;
                # a VPC adds NAT cost and cold-start time and protects nothing here.
    CKV_AWS_173 # Lambda env vars with a CMK: they hold names and ARNs, never credentials
                # (those are in Secrets Manager); the default AWS-managed key encrypts them.
    CKV_AWS_119 # DynamoDB with a CMK: SSE with the AWS-managed key is on; a CMK adds cost and
                # key-policy upkeep without changing who can read the table.
    CKV_AWS_149 # Secrets with a CMK: same reasoning; the aws/secretsmanager key is used.
    CKV_AWS_158 # Log groups with a CMK: logs carry campaign ids and counts only, by design.
    CKV_AWS_27  # SQS with KMS: checkov only recognises KmsMasterKeyId. The queues use SSE-SQS
                # (SqsManagedSseEnabled), and S3 cannot notify a queue on the aws/sqs key.
    CKV_AWS_26  # SNS with KMS: CloudWatch alarms cannot publish to a topic on the AWS-managed
                # key, and alarm messages carry no customer data.
    CKV_AWS_18  # S3 access logging: use CloudTrail data events for audit; a log bucket would
                # need its own logging and lifecycle.
    CKV_AWS_116 # Lambda async DLQ: upload-audience and schedule-send are fed by SQS (their
                # queues have DLQs); http-api is synchronous. poll-metrics has one; the
                # sweep's lost run is redone by the next hour's.
  )
  skip_list="$(IFS=,; echo "${skips[*]}")"
  echo "== checkov $CHECKOV_VERSION: $TEMPLATE (skipped: $skip_list)"
  "$VENV/bin/checkov" -f "$TEMPLATE" --framework cloudformation --compact --quiet \
    --skip-download --skip-check "$skip_list"
  echo "checkov: all other checks passed"
fi
