#!/usr/bin/env bash
# The accelerator check: on a machine with a CUDA GPU, in under 8 minutes, every figure in one log.
#
#   scripts/device_check.sh [LOG]       (default LOG: device_check-<host>-<time>.log in the current folder)
#
# 1. every `full` workload (gpt2, vit, resnet, dlrm_small) for a fixed number of steps on random data of
#    the real shapes and format (written to a scratch folder; the real input pipelines read it), under its
#    precision policy (TF32; bf16 autocast for gpt2 and vit), eager and compiled side by side: step time,
#    tokens / images / rows per second, model FLOP/s, the GPU's matmul peak, MFU, peak memory, and how many
#    steps compilation needs to pay for itself (scripts/bench_mfu.py);
# 2. gpt2 and vit in fp32 (TF32) for comparison with their bf16 policy;
# 3. data time vs step time per `full` preset (scripts/bench_data.py);
# 4. a 2-rank DDP smoke test (`timetrial run ... nproc_per_node=2`) when two or more GPUs exist.
# Each stage has its own time limit, so one stage that hangs cannot take the rest down; the stage limits add
# up to 8 minutes. Needs a CUDA build of torch (the project's pin installs the CPU wheel): PYTHON=... picks
# the interpreter (default: .venv/bin/python, else python3).
# A rehearsal of every stage on a machine without a GPU (minutes, figures meaningless):
#   DEVICE=cpu PRESET=tiny scripts/device_check.sh
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
LOG=${1:-device_check-$(hostname)-$(date +%Y%m%d-%H%M%S).log}
SCRATCH=$(mktemp -d -t timetrial-device-check-XXXXXX)
trap 'rm -rf "$SCRATCH"' EXIT
export PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH} WANDB_MODE=disabled
DEVICE=${DEVICE:-cuda}
PRESET=${PRESET:-full}
STEPS=(--device "$DEVICE" --steps 8 --warmup 2 --random-data --data-dir "$SCRATCH/data")

stage() {  # stage LIMIT_S TITLE COMMAND...: run COMMAND under a time limit, saying how it ended
    local limit=$1 title=$2 start=$SECONDS rc
    shift 2
    echo
    echo "== $title (limit ${limit}s)"
    timeout --kill-after=10 "$limit" "$@"
    rc=$?
    echo "-- $title: exit $rc after $((SECONDS - start))s$([ $rc -eq 124 ] && echo ', TIMED OUT')"
}

{
    echo "== timetrial device check, $(date -Is), host $(hostname), commit $(git rev-parse --short HEAD 2>/dev/null)"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv
    if ! "$PYTHON" -c "import sys, torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, \
'GPUs', torch.cuda.device_count()); sys.exit(0 if torch.cuda.is_available() or '$DEVICE' == 'cpu' else 1)"; then
        echo "no CUDA device visible to $PYTHON (a CPU-only torch build?): nothing to check"
        exit 1
    fi
    GPUS=$("$PYTHON" -c "import torch; print(torch.cuda.device_count())")
    for limit_and_name in 110:gpt2 55:vit 55:resnet 55:dlrm_small; do
        stage "${limit_and_name%%:*}" "${limit_and_name#*:} $PRESET: policy, eager and compiled" \
            "$PYTHON" scripts/bench_mfu.py --presets "$PRESET" --workloads "${limit_and_name#*:}" \
            --compile both "${STEPS[@]}"
    done
    stage 50 "gpt2, vit $PRESET in fp32 (TF32 on CUDA), eager: against their bf16 policy above" \
        "$PYTHON" scripts/bench_mfu.py --presets "$PRESET" --workloads gpt2 vit --precision fp32 \
        --compile off "${STEPS[@]}"
    stage 65 "data time vs step time, $PRESET presets" \
        "$PYTHON" scripts/bench_data.py --preset "$PRESET" --workloads gpt2 vit resnet dlrm_small "${STEPS[@]}"
    if [ "$GPUS" -ge 2 ]; then
        stage 55 "DDP smoke test: resnet tiny on 2 ranks" \
            "$PYTHON" -m harness.commands.cli run workload=resnet preset=tiny device="$DEVICE" nproc_per_node=2 \
            max_steps=40 results_dir="$SCRATCH/runs" data_dir="$SCRATCH/data" progress=false checkpoint_every_evals=0
    else
        echo
        echo "== DDP smoke test: skipped ($GPUS GPU(s); it needs 2)"
    fi
    echo
    echo "== done in ${SECONDS}s; log: $LOG"
} 2>&1 | tee "$LOG"
