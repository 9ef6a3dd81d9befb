#!/usr/bin/env bash
# The GPU check: one prepared run (< 8 minutes on one H100/H200) that trains every precision /
# layout / compile path on the built-in shapes data, checks resume = uninterrupted run, runs a
# torchrun job with evaluation and a resume, checks the step for host syncs, and times ours
# against the textbook DCGAN loop; prints one Markdown table (and writes it under $OUT or --out).
# Without a GPU it runs the same checks on the CPU at toy sizes (about a minute), so it is known
# to work before a GPU is lent:   bash benchmarks/gpu_check.sh [--smoke] [--out DIR] [--skip speed,...]
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-$(command -v python3 || command -v python)}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
# Deterministic cuBLAS for the resume-equivalence part (must be set before CUDA starts).
export CUBLAS_WORKSPACE_CONFIG="${CUBLAS_WORKSPACE_CONFIG:-:4096:8}"
# The decoded-data cache stays inside this run's scratch space, not the user's cache.
export GAN_STUDIO_CACHE="${GAN_STUDIO_CACHE:-$(mktemp -d -t gan-gpu-check-cache-XXXX)}"
args=("$@")
if [ -n "${OUT:-}" ]; then args+=(--out "$OUT"); fi
command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
exec "$PY" -m core.bench.gpu_check "${args[@]}"
