# Sourced by scripts that build or run the tensor-library crates: installs
# PyPI's torch==2.11.0 (the libtorch tch 0.24 pairs with) into a virtual
# environment cached outside the checkout, and points the build at it.
ULD_TORCH_VERSION=2.11.0
ULD_TORCH_VENV="${ULD_TORCH_VENV:-${ULD_CACHE:-$HOME/.cache/uld}/torch-$ULD_TORCH_VERSION}"
if ! "$ULD_TORCH_VENV/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$ULD_TORCH_VERSION')" 2>/dev/null; then
  echo "setting up torch $ULD_TORCH_VERSION in $ULD_TORCH_VENV (about 2.6 GB, once)" >&2
  python3 -m venv "$ULD_TORCH_VENV"
  "$ULD_TORCH_VENV/bin/python" -m pip install --quiet --upgrade pip
  "$ULD_TORCH_VENV/bin/python" -m pip install --quiet "torch==$ULD_TORCH_VERSION"
fi
export PATH="$ULD_TORCH_VENV/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
