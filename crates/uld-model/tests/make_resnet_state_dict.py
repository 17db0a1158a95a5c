"""Writes a random state dict with torchvision ResNet key names and shapes.

Used by the pretrained-import tests (torchvision itself is not needed):
    python make_resnet_state_dict.py OUT_STEM BLOCK STEM_WIDTH BLOCKS WIDTHS
e.g. `out basic 8 2,2,2,2 8,16,32,64` (a narrow ResNet-18) writes
`out.pth` (torch.save, a zip pickle) and `out.safetensors`.
"""
import json
import struct
import sys

import warnings

# torch warns at import when numpy is missing; nothing here needs numpy.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
import torch  # noqa: E402


def resnet_state_dict(block, stem, blocks, widths):
    g = torch.Generator().manual_seed(0)
    sd = {}

    def conv(name, c_out, c_in, k):
        sd[name + ".weight"] = torch.randn(c_out, c_in, k, k, generator=g)

    def bn(name, c):
        sd[name + ".weight"] = torch.rand(c, generator=g) + 0.5
        sd[name + ".bias"] = torch.randn(c, generator=g)
        sd[name + ".running_mean"] = torch.randn(c, generator=g)
        sd[name + ".running_var"] = torch.rand(c, generator=g) + 0.5
        sd[name + ".num_batches_tracked"] = torch.tensor(100, dtype=torch.int64)

    conv("conv1", stem, 3, 7)
    bn("bn1", stem)
    c_in = stem
    expansion = 4 if block == "bottleneck" else 1
    for i, (n, w) in enumerate(zip(blocks, widths)):
        for b in range(n):
            p = f"layer{i + 1}.{b}"
            stride = 2 if (b == 0 and i > 0) else 1
            c_out = w * expansion
            if block == "basic":
                conv(p + ".conv1", w, c_in, 3)
                bn(p + ".bn1", w)
                conv(p + ".conv2", w, w, 3)
                bn(p + ".bn2", w)
            else:
                conv(p + ".conv1", w, c_in, 1)
                bn(p + ".bn1", w)
                conv(p + ".conv2", w, w, 3)
                bn(p + ".bn2", w)
                conv(p + ".conv3", c_out, w, 1)
                bn(p + ".bn3", c_out)
            if stride != 1 or c_in != c_out:
                conv(p + ".downsample.0", c_out, c_in, 1)
                bn(p + ".downsample.1", c_out)
            c_in = c_out
    sd["fc.weight"] = torch.randn(10, c_in, generator=g)
    sd["fc.bias"] = torch.randn(10, generator=g)
    return sd


def write_safetensors(sd, path):
    """The safetensors layout: u64 header length, JSON header, raw data."""
    names = {torch.float32: "F32", torch.int64: "I64"}
    header, blobs, offset = {}, [], 0
    for k, t in sd.items():
        data = t.contiguous().view(torch.uint8).flatten() if t.dim() else t.reshape(1).view(torch.uint8)
        raw = bytes(data.tolist())
        header[k] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


if __name__ == "__main__":
    out, block, stem, blocks, widths = sys.argv[1:6]
    sd = resnet_state_dict(block, int(stem), [int(v) for v in blocks.split(",")], [int(v) for v in widths.split(",")])
    torch.save(sd, out + ".pth")
    write_safetensors(sd, out + ".safetensors")
