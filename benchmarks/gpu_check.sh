#!/usr/bin/env bash
# One run on a CUDA machine (the `device` tool's, or your own): the CUDA tests, the throughput
# benchmark, and p23's whole 10-epoch job at CIFAR-10's size, eager and --cuda-graph, twice each
# (the first also writes the images to /tmp/p23-cifar-sized; the second has a warm disk cache),
# then 3 epochs plain against a 1-process torchrun. Everything it prints is kept under $OUT.
#
#   OUT=/tmp/gpu bash benchmarks/gpu_check.sh          # from the repository root
#
# On CPU it runs too (the CUDA tests skip, the rest is small): check it there before a GPU run.
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"   # common/ without `pip install -e .`
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
if python -c 'import torch, sys; sys.exit(not torch.cuda.is_available())'; then
    device=cuda images=50000 repeats=3 epochs=10 job=benchmarks/p23_cifar_sized.py
else    # a check of this script: --fake-data's 2,000 images, not 50,000 (minutes per epoch here)
    device=cpu images=640 repeats=1 epochs=1 job="scripts/p23_train.py --fake-data"
fi
TIMEFORMAT="wall %R s"
run() {   # run NAME COMMAND...: its output to $OUT/NAME.txt, its exit status and wall time here
    local name=$1; shift
    echo "== $name: $*"
    { time "$@" >"$OUT/$name.txt" 2>&1; echo "   exit $?"; } 2>&1 | tr '\n' ' '; echo
}
{ python -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
  nvidia-smi || true; } >"$OUT/machine.txt" 2>&1
run tests python -m pytest -q -rs -p no:cacheprovider tests/test_common_step.py tests/test_p23_train.py tests/test_p24_train_gpu.py tests/test_common_checkpoint.py \
    -k "cuda or amp or step or gpu"
tail -3 "$OUT/tests.txt"
run bench python benchmarks/train_throughput.py --device "$device" --images "$images" --repeats "$repeats"
grep -A20 "(median)" "$OUT/bench.txt" | grep -v repeat
for graph in --no-cuda-graph --cuda-graph; do
    for n in 1 2; do
        name="job${graph#-}-$n"
        run "$name" python $job \
            --epochs "$epochs" --device "$device" $graph \
            --logdir "$OUT/logs" --checkpoint-dir "$OUT/ckpt" --metrics "$OUT/$name.json"
        grep -h "正确率" "$OUT/$name.txt" | tail -1
        python -c 'import json, sys; m = json.load(open(sys.argv[1]))
print("   images/s", round(m["train_images_per_s"]), "by epoch", [round(v) for v in m["train_images_per_s_by_epoch"]])' "$OUT/$name.json"
    done
done
if [ "$device" = cuda ]; then    # one GPU: does DDP in one torchrun process cost anything?
    run torchrun python benchmarks/torchrun_processes.py --device cuda --epochs 3 --nproc 1
    tail -5 "$OUT/torchrun.txt"
fi
rm -rf "$OUT/ckpt"      # checkpoints are big and not needed back
