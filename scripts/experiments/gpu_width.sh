#!/usr/bin/env bash
# A width of the MLBN network trained and scored on a lent GPU in one device command
# (docs/benchmarks.md, "A width on a lent GPU"): the wheels the GPU image lacks from
# .whl/ (nothing from the internet), a 20-second check (CUDA, the packed data's
# checksum, the library), then scripts/experiments/gpu_width.py within the budget.
# Everything it writes is under $OUT (or ./gpu_results): gpu_width.log, folds.jsonl
# and predictions/, at most 7 files. Folds done by an earlier call are skipped when
# its output is in .cache/gpu_width_resume (carried) or, on a machine still warm,
# in /tmp/gpu_width_state.
#
#   bash scripts/experiments/gpu_width.sh WIDTH [gpu_width.py options]
#
# Environment: BUDGET_S (540: seconds from the start to the last fold's end),
# GPU_DATA (.cache/gpu_data/cv_patches.npz), PYTHON (python3), REQUIRE_CUDA (1).
set -o pipefail
width=${1:?usage: gpu_width.sh WIDTH [gpu_width.py options]}
shift
out=${OUT:-gpu_results}
data=${GPU_DATA:-.cache/gpu_data/cv_patches.npz}
py=${PYTHON:-python3}
state=/tmp/gpu_width_state
mkdir -p "$out"

main() {
  if ! "$py" -c "import skorch, imblearn, sklearn_compat" 2>/dev/null; then
    compgen -G ".whl/*.whl" >/dev/null || { echo "no wheels in .whl/"; return 2; }
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
      --upgrade --target /tmp/site .whl/*.whl || return 2
    export PYTHONPATH=/tmp/site
  fi
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
  echo "== check ($(date -u +%FT%TZ))"
  (cd "$(dirname "$data")" && sha256sum -c "$(basename "$data").sha256") || return 2
  timeout 60 "$py" -c "
import sys, torch, sklearn, skorch, idc_sklearn
print('torch', torch.__version__, 'sklearn', sklearn.__version__,
      'skorch', skorch.__version__)
if torch.cuda.is_available():
    a = torch.randn(1024, 1024, device='cuda')
    torch.cuda.synchronize()
    print('cuda:', torch.cuda.get_device_name(), float((a @ a).abs().mean()))
elif '${REQUIRE_CUDA:-1}' == '1':
    sys.exit('CUDA is not available')
else:
    print('no CUDA: a CPU dry run')
" || return 2
  command -v nvidia-smi >/dev/null &&
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  echo "== $width ($SECONDS s in)"
  local left=$((${BUDGET_S:-540} - SECONDS)) rc
  timeout $((left + 30)) "$py" scripts/experiments/gpu_width.py "$width" \
    --data "$data" --out "$out" --budget-s "$left" \
    --resume-from .cache/gpu_width_resume "$state" "$@"
  rc=$?
  mkdir -p "$state/predictions"
  cp "$out"/folds.jsonl "$state"/ 2>/dev/null
  cp "$out"/predictions/*.npz "$state"/predictions/ 2>/dev/null
  echo "== exit $rc after $SECONDS s (3: out of time, rerun to resume)"
  return $rc
}

main "$@" 2>&1 | tee "$out/gpu_width.log"
exit "${PIPESTATUS[0]}"
