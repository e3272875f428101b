#!/usr/bin/env bash
# The README's test command: build, start the real services, run every test (or the test files
# given as arguments), stop them.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run build
bash scripts/services.sh up
trap 'bash scripts/services.sh down' EXIT
eval "$(bash scripts/services.sh env)"
if [ $# -gt 0 ]; then files=("$@"); else files=(test/*.test.ts); fi
node --import tsx --test --test-concurrency=1 "${files[@]}"
