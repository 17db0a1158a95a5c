# Sourced by the other scripts: the build environment uld needs, installed
# on first use and cached outside the checkout so fresh clones reuse it.
set -euo pipefail
ULD_CACHE="${ULD_CACHE:-$HOME/.cache/uld}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ULD_CACHE/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
if ! command -v cargo >/dev/null 2>&1; then
  echo "uld needs a Rust toolchain (cargo): see https://rustup.rs" >&2
  exit 1
fi
source "$(dirname "${BASH_SOURCE[0]}")/torch-env.sh"
