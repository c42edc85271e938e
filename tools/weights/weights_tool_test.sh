#!/usr/bin/env bash
# w2p-weights on the reference fixtures ($W2P_REFERENCE_FIXTURES, default ../shared/fixtures/
# reference next to the repository): inspect, architecture checks that pass and fail, and a
# round trip HDF5 -> torch.save -> HDF5 that changes no value.
set -euo pipefail
tool="$1"
here="$(cd "$(dirname "$0")" && pwd)"
fixtures="${W2P_REFERENCE_FIXTURES:-$here/../../../shared/fixtures/reference}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$tool" inspect "$fixtures/wav2pos.h5" > "$tmp/inspect.txt"
grep -q "blocks.0.attn.qkv.weight *\[768, 256\]" "$tmp/inspect.txt" || fail "inspect: $(head -3 "$tmp/inspect.txt")"
"$tool" inspect "$fixtures/wav2pos.h5" --json | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["format"]=="hdf5" and len(d["tensors"])>100, d["format"]'

"$tool" check "$fixtures/wav2pos.h5" --model wav2pos || fail "wav2pos.h5 should fit wav2pos"
"$tool" check "$fixtures/ngcc_pretrain.h5" --model ngcc || fail "ngcc_pretrain.h5 should fit ngcc"
set +e
"$tool" check "$fixtures/ngcc_pretrain.h5" --model ngcc --channels 64 > "$tmp/check.txt"
rc=$?
set -e
[ "$rc" = 1 ] || fail "a 64-channel check should exit 1, got $rc"
grep -q "^shape *ngcc.backbone" "$tmp/check.txt" || fail "check: $(cat "$tmp/check.txt")"

"$tool" convert "$fixtures/wav2pos.h5" "$tmp/w.pt"
"$tool" convert "$tmp/w.pt" "$tmp/w.h5"
"$tool" diff "$fixtures/wav2pos.h5" "$tmp/w.h5" || fail "round trip changed values"
"$tool" check "$tmp/w.pt" --model wav2pos || fail "converted .pt should fit wav2pos"
# The NGCC part of a wav2pos state_dict is a pre-trained NGCC file with one prefix less.
"$tool" convert "$fixtures/wav2pos.h5" "$tmp/all.pt" --strip-prefix ngcc.
set +e
"$tool" diff "$tmp/all.pt" "$fixtures/ngcc_pretrain.h5" > "$tmp/diff.txt"
set -e
grep -q "only in" "$tmp/diff.txt" || fail "diff should report keys only in one file"
echo "ok"
