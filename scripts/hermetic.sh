#!/usr/bin/env bash
# Runs a command with everything beside the repository hidden, so a test that reads a file
# outside the repository (say `../shared/...`) fails here as it would on a user's fresh clone.
#
#   scripts/hermetic.sh cargo test --workspace
#
# How: a private mount namespace (unshare, as root or with user namespaces) in which every
# sibling of the repository folder is covered by an empty read-only tmpfs (folders) or
# /dev/null (files). The toolchain (CARGO_HOME, RUSTUP_HOME), the Python that runs the
# emulator and CARGO_TARGET_DIR stay visible when they live beside the repository. The
# repository itself, /tmp and the rest of the system are untouched. Where no mount namespace
# can be made, the command runs as it is and a static check of the sources stands in
# (scripts/hermetic.sh --static), saying so.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd -P)"
parent="$(dirname "$repo")"

# Static half: no source may name the ESP reference folder beside the repository, nor climb
# four folders up (no crate sits that deep).
static_check() {
  local hits
  hits="$(cd "$repo" && git ls-files '*.rs' '*.sh' '*.toml' 2>/dev/null \
    | xargs -r grep -nE '(\.\./){4,}|\.\./shared/esp/' -- 2>/dev/null \
    | grep -v '^scripts/hermetic.sh:' || true)"
  if [ -n "$hits" ]; then
    echo "hermetic: these lines name paths outside the repository:" >&2
    echo "$hits" >&2
    return 1
  fi
}

if [ "${1:-}" = "--static" ]; then
  static_check
  exit $?
fi
static_check

if [ "${ESPBRIDGE_HERMETIC_INNER:-}" = "1" ]; then
  # Inside the namespace: hide the siblings, prove it, run the command.
  mount --make-rprivate / 2>/dev/null || true
  keep=()
  for p in "${CARGO_HOME:-$HOME/.cargo}" "${RUSTUP_HOME:-$HOME/.rustup}" "${CARGO_TARGET_DIR:-}" \
    "$(command -v python3 2>/dev/null || true)" "$(command -v cargo 2>/dev/null || true)"; do
    [ -n "$p" ] && [ -e "$p" ] && keep+=("$(readlink -f "$p")")
  done
  hidden=0
  for entry in "$parent"/* "$parent"/.[!.]*; do
    [ -e "$entry" ] || continue
    real="$(readlink -f "$entry")"
    [ "$real" = "$repo" ] && continue
    skip=0
    for k in "${keep[@]}"; do
      case "$k/" in "$real"/*) skip=1 ;; esac
    done
    [ "$skip" = 1 ] && continue
    if [ -d "$entry" ] && [ ! -L "$entry" ]; then
      mount -t tmpfs -o ro,size=4k espbridge-hermetic "$entry"
    elif [ -f "$entry" ] && [ ! -L "$entry" ]; then
      mount --bind /dev/null "$entry"
    fi
    hidden=$((hidden + 1))
  done
  if [ -d "$parent/shared" ] && [ "$(readlink -f "$parent/shared")" != "$repo" ] \
    && [ -n "$(ls -A "$parent/shared" 2>/dev/null)" ]; then
    echo "hermetic: $parent/shared is still visible; refusing to run" >&2
    exit 1
  fi
  echo "hermetic: $hidden entries beside $repo hidden from the tests" >&2
  exec "$@"
fi

if [ "$parent" = "/" ]; then
  echo "hermetic: the repository sits at the file-system root; nothing beside it to hide" >&2
  exec "$@"
fi
if unshare --mount --propagation private true 2>/dev/null; then
  exec env ESPBRIDGE_HERMETIC_INNER=1 unshare --mount --propagation private "$0" "$@"
elif unshare --user --map-root-user --mount true 2>/dev/null; then
  exec env ESPBRIDGE_HERMETIC_INNER=1 unshare --user --map-root-user --mount "$0" "$@"
fi
echo "hermetic: no mount namespace available here; only the static check ran" >&2
exec "$@"
