#!/usr/bin/env bash
# Speed figures on a CUDA machine, from a `uld` binary built elsewhere:
# training steps with fp32, bf16 and fp16 mixed precision (whole steps, loader
# included), the model step against the same network in PyTorch, and
# inference. Usage: scripts/gpu-bench.sh PATH/TO/uld [PYTHON]
# The binary finds libtorch through that Python's torch package (2.11.0).
set -euo pipefail
uld=${1:?usage: scripts/gpu-bench.sh PATH/TO/uld [PYTHON]}
python=${2:-python3}
torch_lib=$("$python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH="$torch_lib:${LD_LIBRARY_PATH:-}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
data=$(mktemp -d)
"$uld" synth --preset small --patients 48 --image-size 512 --out "$data/synth" >/dev/null
for preset in small deeplesion; do
  for precision in fp32 bf16 fp16; do
    "$uld" bench train --data "$data/synth" --preset "$preset" --device cuda \
      --set precision="$precision" --set loader.workers=8 --steps 30 --warmup 5
  done
done
# The PyTorch reference script is built into the binary (--reference overrides it).
"$uld" bench model --device cuda --preset small --batch 8 --python "$python"
"$uld" bench model --device cuda --preset deeplesion --batch 4 --python "$python"
