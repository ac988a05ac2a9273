#!/usr/bin/env bash
# The one command that runs every test: starts the AWS emulator (moto, installed into a venv on
# first use), checks the SAM template, runs the whole workspace's tests, stops the emulator.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/aws-emu.sh start
trap 'scripts/aws-emu.sh stop' EXIT
eval "$(scripts/aws-emu.sh env)"

scripts/check-infra.sh
cargo test --workspace
