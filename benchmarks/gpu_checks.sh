#!/usr/bin/env bash
# The checks that need a GPU, as one prepared script: each stage logs to <out>/<stage>.log and prints
# its last lines, and a stage that fails or times out does not stop the next.
#
#     bash benchmarks/gpu_checks.sh OUT [STAGE ...]     # stages: info suite packing single study (default: all
#                                                        # but study, about 8 minutes on an H200 with 16 cores)
#
#   info     the card, torch and CUDA
#   suite    the whole test suite with CUDA visible (pytest -n 15, pytest-xdist from requirements-dev.txt): the CUDA-graph
#            tests run, and every other test trains on the GPU where it asks for --device auto
#   packing  16 HalfCheetah-v5 seeds packed into one process against the local-worker sweep of the
#            same 16 (benchmarks/packing.py), and CrossQ's 16 packed
#   single   one HalfCheetah-v5 run (N = 1) of SAC and of CrossQ: steps/s from its TensorBoard
#   study    30 HalfCheetah-v5 seeds packed, 100,000 steps each, then each run's posture (about 6 minutes
#            at 10,000 steps/s, plus the evals)
#
# Needs gymnasium, MuJoCo and Box2D installed (pip install -r requirements.txt, or wheels).
set -u
out=${1:?usage: gpu_checks.sh OUT [STAGE ...]}
shift
stages=${*:-info suite packing single}
mkdir -p "$out"
cd "$(dirname "$0")/.." || exit 1
export PYTHONUNBUFFERED=1
work=$(mktemp -d)
seeds() { seq -s " " 1 "$1"; }

stage() {  # stage NAME SECONDS COMMAND...: run it with a time limit, log it, say how it ended
    local name=$1 limit=$2
    shift 2
    local start=$SECONDS
    timeout "$limit" "$@" >"$out/$name.log" 2>&1
    local rc=$?
    echo "== $name: rc $rc in $((SECONDS - start)) s" | tee -a "$out/summary.txt"
    tail -n 15 "$out/$name.log"
}

sps() {  # the median of a run's time/sps points after its warm-up, from its TensorBoard events
    python3 - "$@" <<'EOF'
import statistics, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
for run_dir in sys.argv[1:]:
    events = EventAccumulator(run_dir)
    events.Reload()
    points = [event.value for event in events.Scalars("time/sps")][4:]  # past the warm-up's points
    print(f"{run_dir}: {statistics.median(points):.0f} steps/s (median of {len(points)} points)")
EOF
}

for name in $stages; do
    case $name in
    info)
        stage info 60 bash -c 'nvidia-smi; nproc; python3 -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name())"'
        ;;
    suite)
        stage suite 420 python3 -m pytest -q -n 15 -p no:cacheprovider tests
        ;;
    packing)
        stage packing 300 python3 benchmarks/packing.py --env-name HalfCheetah-v5 --seeds 16 --steps 5000 --device cuda --repeats 1
        stage packing-crossq 240 python3 -m soft_actor_critic sweep --sweep-name crossq16 --directory "$work" \
            --algorithm crossq --env-name HalfCheetah-v5 --seed $(seeds 16) --num-steps 5000 --eval-every 0 \
            --checkpoint-every 0 --no-save-buffer --seeds-per-process 16 --device cuda
        sps "$work"/crossq16/*seed=1 >>"$out/packing-crossq.log" 2>&1
        tail -n 1 "$out/packing-crossq.log"
        ;;
    single)
        for algorithm in sac crossq; do
            stage "single-$algorithm" 180 python3 -m soft_actor_critic train --run-name "$algorithm" --directory "$work" \
                --algorithm "$algorithm" --env-name HalfCheetah-v5 --num-steps 10000 --eval-every 0 --device cuda
            sps "$work/$algorithm" | tee -a "$out/single-$algorithm.log"
        done
        ;;
    study)
        stage study 540 python3 -m soft_actor_critic sweep --sweep-name hc30 --directory "$work" \
            --env-name HalfCheetah-v5 --seed $(seeds 30) --num-steps 100000 --eval-every 100000 \
            --checkpoint-every 0 --no-save-buffer --seeds-per-process 30 --device cuda
        sps "$work"/hc30/seed=1 >>"$out/study.log" 2>&1
        stage posture 240 python3 analysis/posture.py "$work"/hc30/seed=*
        ;;
    *)
        echo "unknown stage: $name (info, suite, packing, single, study)" >&2
        exit 2
        ;;
    esac
done
