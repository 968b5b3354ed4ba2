#!/usr/bin/env bash
# The GPU checks, as one script for a lent GPU machine (see docs/benchmarks.md):
# the estimator tests with device="auto" resolving to CUDA, the GPU-only tests,
# and the training-throughput benchmark at the paper's network size.
# Wheels of packages the GPU image lacks (skorch, imbalanced-learn, sklearn-compat)
# are expected in .whl/; results go to $OUT (or ./gpu_results).
set -o pipefail
out=${OUT:-gpu_results}
mkdir -p "$out"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python3 -c "import torch, sklearn, skorch; print('torch', torch.__version__, \
'sklearn', sklearn.__version__, 'skorch', skorch.__version__, torch.cuda.get_device_name())" \
  | tee "$out/versions.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee -a "$out/versions.txt"
timeout "${TEST_TIMEOUT:-240}" python3 -m pytest -q -p no:cacheprovider -rs \
  tests/test_classifier.py tests/test_network.py tests/test_split.py \
  tests/test_forward.py tests/test_precision.py tests/test_batching.py \
  tests/test_persistence.py tests/test_checkpoint.py \
  2>&1 | tee "$out/pytest.log" | tail -25
# float32 at the paper's batch sizes, then issue 9's levers (BatchNorm folding,
# bf16, data resident on the GPU, torch.compile, CUDA graphs, compiled inference)
# against the bf16 matmul rate measured in the same run; the most telling first, as
# BENCH_TIMEOUT may cut the rest.
timeout "${BENCH_TIMEOUT:-420}" python3 benchmarks/bench_training.py --preset paper \
  --n "${BENCH_N:-20000}" --batch-size 32 256 \
  --variants float32 bf16+resident bf16+resident+inference-compile \
  bf16+resident+compile bf16+resident+compile-graphs float32+eager bf16 \
  2>&1 | tee "$out/bench_training.log"
