#!/usr/bin/env bash
# The GPU check in one command, for anyone with a CUDA GPU:
#   1. the CUDA tests (python -m pytest -q -m cuda): every estimator and public method on
#      the GPU, and the GPU's results against the CPU's on the same data;
#   2. the GPU benchmarks: each runs the peer (scikit-learn, SciPy, a plain PyTorch loop)
#      and ours on the same data in one process and prints the ratio;
#   3. the contrastive embedding's consistency across 10 seeds on the GPU.
# Usage: bash benchmarks/run_gpu.sh [--quick]   (--quick: smaller benchmark sizes)
# Exits non-zero if any step failed; every step runs regardless. Record the numbers in
# docs/benchmarks.md with the machine.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
quick=0
[[ "${1:-}" == "--quick" ]] && quick=1
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA GPU visible to torch')" || exit 2
python -c "import torch; print('GPU:', torch.cuda.get_device_name(0), '| torch', torch.__version__)"

failed=()
step() {
    echo; echo "=== $*"
    local t0=$SECONDS
    "$@" || failed+=("$*")
    echo "--- $((SECONDS - t0)) s"
}

step python -m pytest -q -m cuda -p no:cacheprovider
if ((quick)); then
    step python benchmarks/bench_logistic_cv.py --device cuda --n-samples 10000
    step python benchmarks/bench_pca.py --device cuda --n-samples 200000 --repeats 1
    step python benchmarks/bench_time_resolved.py --device cuda --repeats 1
    step python benchmarks/bench_training_loop.py --device cuda --quick
else
    step python benchmarks/bench_logistic_cv.py --device cuda --float64
    step python benchmarks/bench_pca.py --device cuda
    step python benchmarks/bench_time_resolved.py --device cuda
    step python benchmarks/bench_training_loop.py --device cuda
fi
if ((quick)); then
    step python benchmarks/bench_sequence.py --device cuda --quick
    step python benchmarks/bench_encoding.py --device cuda --quick
    step python benchmarks/bench_choice_models.py --device cuda --n-subjects 200 --scipy-subjects 20 --numpy-subjects 5
else
    step python benchmarks/bench_sequence.py --device cuda
    step python benchmarks/bench_encoding.py --device cuda
    step python benchmarks/bench_choice_models.py --device cuda --scipy-subjects 100 --numpy-subjects 20
fi
humans=../shared/data/real/human_two_armed_bandit_dan_loewenstein
if [[ -d "$humans" ]]; then  # the 97 real bandit subjects, where the shared data are
    step python benchmarks/bench_choice_models.py --device cuda --humans "$humans"
fi
step python benchmarks/consistency_across_seeds.py --device cuda --seeds 10

echo
if ((${#failed[@]})); then
    printf 'FAILED: %s\n' "${failed[@]}"
    exit 1
fi
echo "all GPU checks passed"
