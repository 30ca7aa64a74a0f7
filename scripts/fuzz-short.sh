#!/usr/bin/env bash
# make fuzz-short: every Go fuzz target (func FuzzXxx in a _test.go) for
# FUZZTIME each (default 10s). `go test -fuzz` takes one target of one
# package at a time, hence the loop. A failure leaves the input that broke
# the target in its package's testdata/fuzz/FuzzXxx/, where plain `go
# test` runs it from then on: commit it with the fix.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10s}
start=$(date +%s)
n=0
failed=()
while IFS= read -r file; do
	dir=$(dirname "$file")
	for name in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$file"); do
		n=$((n + 1))
		echo "== ./$dir $name ($FUZZTIME)"
		if ! $GO test -run '^$' -fuzz "^$name\$" -fuzztime "$FUZZTIME" "./$dir"; then
			failed+=("./$dir $name")
		fi
	done
done < <(grep -rl --include='*_test.go' '^func Fuzz' internal cmd | sort)
echo "fuzz-short: $n targets in $(( $(date +%s) - start ))s"
if [ ${#failed[@]} -gt 0 ]; then
	printf 'fuzz-short: failed: %s\n' "${failed[@]}"
	exit 1
fi
