#!/usr/bin/env bash
# Every GPU figure in one run, one JSON: benchmarks/gpu.sh [--out FILE] [--device cuda:N] [--only ITEMS] [--dry-run]
#   train (img/s vs the pytorch/examples loop, bf16 + channels_last), Inception img/s vs pytorch-fid, kNN and
#   L2-SVM GPU vs CPU, end-to-end FID-50k on 32-px synthetic images, peak GPU memory of each.
# Each item fails soft (its error is recorded in the JSON's "failed" and the item's "error").
# Budget: under 8 minutes on one GPU; the whole run is cut at 8 minutes (the JSON keeps the items done).
# --dry-run: tiny sizes on the CPU, to test the plumbing (no figures). See benchmarks/gpu_bench.py.
set -u
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && PY=.venv/bin/python
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec timeout --signal=TERM 480 "$PY" benchmarks/gpu_bench.py "$@"
