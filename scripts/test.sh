#!/usr/bin/env bash
# The one command that runs every test: starts the AWS emulator (moto, installed into a venv on
# first use), checks the SAM template, installs Debian's chromium for the report's browser test
# if it is missing, runs the whole workspace's tests with nothing beside the repository visible
# (scripts/hermetic.sh), stops the emulator.
set -euo pipefail
cd "$(dirname "$0")/.."

# The HTML report is rendered in headless Chromium by one test (shared/analysis/tests/chromium.rs).
if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ] && command -v apt-get >/dev/null; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && sudo_cmd="sudo"
  echo "== installing chromium (Debian) for the report test" >&2
  if $sudo_cmd apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 \
    || { $sudo_cmd apt-get update >/dev/null 2>&1 \
      && $sudo_cmd apt-get install -y --no-install-recommends chromium >/dev/null 2>&1; }; then
    echo "chromium installed" >&2
  else
    echo "chromium could not be installed; the browser test will say it is skipped" >&2
  fi
fi
# In CI a missing browser is a failure, not a skip.
if [ "${CI:-}" = "true" ]; then
  export ESPBRIDGE_REQUIRE_CHROMIUM=1
fi

# Property tests draw their cases from a fixed seed here, so a run fails or passes the same way
# on every machine; exploring other cases is a separate, longer run (README, "Property tests").
export PROPTEST_RNG_SEED="${PROPTEST_RNG_SEED:-20261202}"

scripts/aws-emu.sh start
trap 'scripts/aws-emu.sh stop' EXIT
eval "$(scripts/aws-emu.sh env)"

scripts/check-infra.sh
# Tests run with everything beside the repository hidden: a test that reads outside it fails
# here, as it would on a fresh clone with nothing beside it.
scripts/hermetic.sh cargo test --workspace
