#!/usr/bin/env bash
# make demo: one Operation through every format the CLI speaks, and one bad input.
set -euo pipefail
bin=${1:-.venv/bin}
here=$(cd "$(dirname "$0")" && pwd)
v1op() { "$bin/v1op" "$@"; }
# The example's payloads are of the types this package ships (v1op.example.v1): known
# without --import. Other payload types would need --import or --descriptor-set.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== JSON -> binary protobuf ($here/operation.json)"
v1op convert --from json --to binary "$here/operation.json" -o "$work/op.binpb"
echo "$(wc -c <"$work/op.binpb") bytes"

echo "== binary -> text format"
v1op convert --from binary --to text "$work/op.binpb" | tee "$work/op.txtpb"

echo "== text -> JSON: the same operation, nanoseconds and typed payloads intact"
v1op convert --from text --to json --indent 2 "$work/op.txtpb" | tee "$work/op.json"

echo "== the request form (no OUTPUT_ONLY fields), for Update and Finalize bodies"
v1op convert --from json --to json --omit-output-only "$work/op.json"

echo "== a failed operation: google.rpc.Status with typed error details"
v1op convert --from json --to text "$here/failed-operation.json"

echo "== bad input is reported with its JSON path and exit status 2"
status=0
v1op convert --from json --to binary "$here/bad-operation.json" >/dev/null || status=$?
echo "exit status: $status"
[ "$status" -eq 2 ]
