#!/usr/bin/env bash
# Builds the gcemu image from scratch: a static musl binary and nothing else.
#   docker/build.sh [TAG]     (default tag gcemu:latest; GCEMU_VERSION overrides the version label)
set -euo pipefail
cd "$(dirname "$0")/.."

tag="${1:-gcemu:latest}"
target=x86_64-unknown-linux-musl
version="${GCEMU_VERSION:-$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)}"
# The source label: the repository this was built from (its remote when there is one).
source_url="$(git config --get remote.origin.url 2>/dev/null || true)"
source_url="${GCEMU_SOURCE:-${source_url:-graph-connectors-emulator}}"

if ! rustup target list --installed | grep -qx "$target"; then
    rustup target add "$target"
fi
if ! command -v musl-gcc >/dev/null; then
    echo "musl-gcc is missing: apt-get install musl-tools" >&2
    exit 1
fi
CC_x86_64_unknown_linux_musl=musl-gcc cargo build --release --locked --target "$target"

context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
cp "target/$target/release/gcemu" "$context/gcemu"
strip "$context/gcemu" 2>/dev/null || true
mkdir "$context/data"
cp docker/Dockerfile "$context/Dockerfile"
DOCKER_BUILDKIT=0 docker build --quiet --build-arg "VERSION=$version" --build-arg "SOURCE=$source_url" \
    -t "$tag" "$context" >/dev/null
echo "built $tag ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.1f MB", $1/1000000}'))"
