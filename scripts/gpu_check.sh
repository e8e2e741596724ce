#!/usr/bin/env bash
# The GPU path's check: the tests marked `gpu`, then a short timed grid on --device cuda at fp32 and
# bf16, each with and without --compile, plus the hot-loop ratios (benchmarks/bench_hot_loops.py).
# Prints which GPU and the figures, and writes them to $OUT/gpu_check.md (default
# benchmarks/gpu_check.md; the CPU dry mode: gpu_check-cpu.md) for BENCHMARKS.md to quote.
# Under 5 minutes on one GPU.
#
#   scripts/gpu_check.sh                # on a GPU machine
#   scripts/gpu_check.sh --device cpu   # dry mode: the same steps on the CPU, tiny grid, --compile with
#                                       # the eager backend (inductor's C++ compile takes minutes on a CPU)
set -euo pipefail
DEVICE=cuda
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE="$2"; shift 2 ;;
    --device=*) DEVICE="${1#*=}"; shift ;;
    *) echo "gpu_check.sh: unknown argument $1; use --device cuda|cpu" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
[ -x .venv/bin/python ] && PY=${PYTHON:-.venv/bin/python}
export HF_HUB_OFFLINE=1
REPORT="${OUT:-benchmarks}/gpu_check$([ "$DEVICE" = cpu ] && echo -cpu).md"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
if [ "$DEVICE" = cpu ]; then
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
  export BENCH_COMPILE_BACKEND=${BENCH_COMPILE_BACKEND:-eager}  # --compile's plumbing, no C++ compile
  NICE="nice -n 10"; STEPS=10; BUDGETS=1; IMAGES=512; HOT_STEPS=10; TESTS=(tests/test_gpu_path.py)
else
  NICE=""; STEPS=100; BUDGETS=5,20; IMAGES=4096; HOT_STEPS=100; TESTS=(-m gpu tests)
fi
START=$(date +%s)
{
  echo "## GPU check ($(date -u +%Y-%m-%dT%H:%MZ), --device $DEVICE)"
  echo
  echo "Command: \`scripts/gpu_check.sh --device $DEVICE\`. Commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)."
  $PY - <<'PY'
import platform, torch
gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
print(f"Device: {gpu}; torch {torch.__version__}, CUDA {torch.version.cuda}; {platform.machine()} Linux.")
PY
  echo
} > "$WORK/report.md"
echo "== tests: ${TESTS[*]}"
$NICE $PY -m pytest -q "${TESTS[@]}" 2>&1 | tail -3 | tee "$WORK/tests.txt"
{ echo "Tests (\`pytest -q ${TESTS[*]}\`): $(tail -1 "$WORK/tests.txt")"; echo; } >> "$WORK/report.md"
{
  echo "| precision | compile | cells | wall (s) | linear-probe acc | finetune acc | device_info |"
  echo "|---|---|---|---|---|---|---|"
} >> "$WORK/report.md"
for PREC in fp32 bf16; do
  for COMPILE in "" --compile; do
    OUTDIR="$WORK/run-$PREC${COMPILE:+-compile}"
    echo "== grid: --precision $PREC $COMPILE"
    T0=$(date +%s.%N)
    $NICE $PY -m bench run --device "$DEVICE" --precision "$PREC" $COMPILE --encoders efficientnet-lite0 \
      --strategies linear-probe,finetune --tasks mnist5k --budgets "$BUDGETS" --seeds 1 --no-contamination \
      --forgetting off --no-progress --set "max_steps=$STEPS" --out "$OUTDIR" > "$WORK/log.txt" 2>&1 \
      || { cat "$WORK/log.txt"; exit 1; }
    T1=$(date +%s.%N)
    $PY - "$OUTDIR/results.jsonl" "$PREC" "${COMPILE:+yes}" "$T0" "$T1" >> "$WORK/report.md" <<'PY'
import json, sys
path, prec, comp, t0, t1 = sys.argv[1:]
recs = [json.loads(l) for l in open(path)]
acc = lambda s: ", ".join(f"{r['metrics']['accuracy']:.3f}" for r in recs if r["strategy"] == s and r.get("status") == "ok") or "-"
info = recs[0].get("device_info", {}) if recs else {}
keep = {k: info[k] for k in ("gpu", "precision", "compile", "compile_backend", "channels_last", "oom_backoff")
        if k in info}
print(f"| {prec} | {comp or 'no'} | {len(recs)} | {float(t1) - float(t0):.1f} | {acc('linear-probe')} "
      f"| {acc('finetune')} | {json.dumps(keep)} |")
PY
    tail -1 "$WORK/report.md"
  done
done
echo >> "$WORK/report.md"
for PREC in fp32 bf16; do
  echo "== hot loops: --precision $PREC"
  $NICE $PY benchmarks/bench_hot_loops.py --device "$DEVICE" --precision "$PREC" --images "$IMAGES" \
    --steps "$HOT_STEPS" | sed -n '/^| 1\./p;/^| 2\./p' | sed "s/^| /| $PREC: /" > "$WORK/hot-$PREC.txt"
  cat "$WORK/hot-$PREC.txt"
done
{
  echo "| figure | harness | bare PyTorch | ratio | target |"
  echo "|---|---|---|---|---|"
  cat "$WORK"/hot-*.txt
  echo
  echo "Total: $(( $(date +%s) - START )) s."
} >> "$WORK/report.md"
mkdir -p "$(dirname "$REPORT")"
cp "$WORK/report.md" "$REPORT"
echo "== written $REPORT"
cat "$REPORT"
