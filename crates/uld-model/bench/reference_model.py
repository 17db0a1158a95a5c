"""PyTorch reference of the uld detector, for the model-step parity benchmark.

Builds the network that `uld_model::FcosDetector` builds from the same TOML
config (layer for layer: ResNet stem and blocks with GroupNorm or frozen
BatchNorm, FPN with extra levels, optional 3DCE fusion, the FCOS head with
per-level scales), and times forward + loss + backward + SGD step on the
dense targets that `uld_model::bench::write_bench_targets` exported, with the
same optimiser settings (SGD, lr 0.01, momentum 0.9, weight decay 1e-4).

    python reference_model.py --config model.toml --targets targets.safetensors \
        --batch 2 --size 288 --threads 2 --warmup 2 --steps 5 [--device cpu]

Prints one JSON line: {"step_s": [...], "median_s": ...}. Needs only torch.
"""
import argparse
import json
import math
import statistics
import struct
import time
import tomllib

import warnings

# torch warns at import when numpy is missing; nothing here needs numpy.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
import torch  # noqa: E402
import torch.nn as nn
import torch.nn.functional as F

BN_EPS = 1e-5


class FrozenBatchNorm(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.register_buffer("weight", torch.ones(c))
        self.register_buffer("bias", torch.zeros(c))
        self.register_buffer("running_mean", torch.zeros(c))
        self.register_buffer("running_var", torch.ones(c))

    def forward(self, x):
        scale = self.weight * (self.running_var + BN_EPS).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1)


def make_norm(cfg, c):
    if cfg["kind"] == "group_norm":
        return nn.GroupNorm(cfg["groups"], c)
    return FrozenBatchNorm(c)


class Block(nn.Module):
    def __init__(self, kind, c_in, width, stride, norm):
        super().__init__()
        c_out = width * (4 if kind == "bottleneck" else 1)
        if kind == "basic":
            shapes = [(3, c_in, width, stride), (3, width, width, 1)]
        else:
            shapes = [(1, c_in, width, 1), (3, width, width, stride), (1, width, c_out, 1)]
        self.convs = nn.ModuleList(nn.Conv2d(ci, co, k, s, k // 2, bias=False) for k, ci, co, s in shapes)
        self.norms = nn.ModuleList(make_norm(norm, co) for _, _, co, _ in shapes)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), make_norm(norm, c_out))

    def forward(self, x):
        y = x
        last = len(self.convs) - 1
        for i, (c, n) in enumerate(zip(self.convs, self.norms)):
            y = n(c(y))
            if i < last:
                y = y.relu()
        s = x if self.downsample is None else self.downsample(x)
        return (y + s).relu()


class Backbone(nn.Module):
    def __init__(self, cfg, in_channels):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, cfg["stem_width"], 7, 2, 3, bias=False)
        self.bn1 = make_norm(cfg["norm"], cfg["stem_width"])
        expansion = 4 if cfg["block"] == "bottleneck" else 1
        c_in = cfg["stem_width"]
        self.stages = nn.ModuleList()
        for i, (n, w) in enumerate(zip(cfg["stage_blocks"], cfg["stage_widths"])):
            blocks = []
            for b in range(n):
                stride = 2 if (i > 0 and b == 0) else 1
                blocks.append(Block(cfg["block"], c_in, w, stride, cfg["norm"]))
                c_in = w * expansion
            self.stages.append(nn.Sequential(*blocks))

    def forward(self, x):
        x = F.max_pool2d(self.bn1(self.conv1(x)).relu(), 3, 2, 1)
        outs = []
        for s in self.stages:
            x = s(x)
            outs.append(x)
        return outs


class Fpn(nn.Module):
    def __init__(self, stage_channels, channels, strides):
        super().__init__()
        self.first = int(math.log2(strides[0] // 4))
        used = stage_channels[self.first:]
        n_out = min(len(strides), len(used))
        self.lateral = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in used)
        self.output = nn.ModuleList(nn.Conv2d(channels, channels, 3, 1, 1) for _ in range(n_out))
        self.extra = nn.ModuleList(nn.Conv2d(channels, channels, 3, 2, 1) for _ in range(len(strides) - n_out))

    def forward(self, stages):
        used = stages[self.first:]
        top = self.lateral[-1](used[-1])
        inner = [top]
        for i in range(len(used) - 2, -1, -1):
            lat = self.lateral[i](used[i])
            top = lat + F.interpolate(top, size=lat.shape[-2:], mode="nearest")
            inner.append(top)
        inner.reverse()
        levels = [c(x) for x, c in zip(inner, self.output)]
        last = levels[-1]
        for i, c in enumerate(self.extra):
            last = c(last if i == 0 else last.relu())
            levels.append(last)
        return levels


def head_conv(c_in, c_out, bias):
    conv = nn.Conv2d(c_in, c_out, 3, 1, 1)
    nn.init.normal_(conv.weight, std=0.01)
    nn.init.constant_(conv.bias, bias)
    return conv


class Head(nn.Module):
    def __init__(self, channels, levels, cfg):
        super().__init__()

        def tower():
            layers = []
            for _ in range(cfg["convs"]):
                layers += [head_conv(channels, channels, 0.0), nn.GroupNorm(cfg["norm_groups"], channels), nn.ReLU()]
            return nn.Sequential(*layers)

        self.cls_tower, self.box_tower = tower(), tower()
        prior = cfg["prior_prob"]
        self.cls_logits = head_conv(channels, 1, -math.log((1 - prior) / prior))
        self.bbox_pred = head_conv(channels, 4, 0.0)
        self.quality = head_conv(channels, 1, 0.0)
        self.scales = nn.ParameterList(nn.Parameter(torch.ones(1)) for _ in range(levels))

    def forward(self, features, strides):
        cls, ltrb, quality = [], [], []
        for x, stride, scale in zip(features, strides, self.scales):
            n = x.shape[0]
            c = self.cls_tower(x)
            b = self.box_tower(x)
            cls.append(self.cls_logits(c).view(n, -1))
            quality.append(self.quality(b).view(n, -1))
            d = (self.bbox_pred(b) * scale).clamp(max=10.0).exp() * stride
            ltrb.append(d.permute(0, 2, 3, 1).reshape(n, -1, 4))
        return torch.cat(cls, 1), torch.cat(ltrb, 1), torch.cat(quality, 1)


class Detector(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        inp, bb = cfg["input"], cfg["backbone"]
        self.groups = inp["slices"] // 3
        self.fuse = inp["fuse_groups"]
        self.backbone = Backbone(bb, 3 if self.fuse else inp["slices"])
        expansion = 4 if bb["block"] == "bottleneck" else 1
        c = cfg["fpn"]["channels"]
        strides = cfg["fpn"]["strides"]
        self.fpn = Fpn([w * expansion for w in bb["stage_widths"]], c, strides)
        self.fusion = None
        if self.fuse and self.groups > 1:
            self.fusion = nn.ModuleList(nn.Conv2d(self.groups * c, c, 1) for _ in strides)
        self.head = Head(c, len(strides), cfg["head"])

    def forward(self, images):
        n, s, h, w = images.shape
        if not self.fuse:
            levels = self.fpn(self.backbone(images))
        else:
            g = s // 3
            levels = self.fpn(self.backbone(images.reshape(n * g, 3, h, w)))
            if self.fusion is not None:
                levels = [conv(x.reshape(n, g * x.shape[1], *x.shape[2:])) for x, conv in zip(levels, self.fusion)]
        return self.head(levels, self.cfg["fpn"]["strides"])


def ltrb_areas(pred, target):
    lo, hi = torch.minimum(pred, target), torch.maximum(pred, target)
    area = lambda d: (d[:, 0] + d[:, 2]) * (d[:, 1] + d[:, 3])
    inter = (lo[:, 0] + lo[:, 2]).clamp(min=0) * (lo[:, 1] + lo[:, 3]).clamp(min=0)
    union = area(pred) + area(target) - inter
    enclosing = (hi[:, 0] + hi[:, 2]) * (hi[:, 1] + hi[:, 3])
    return inter, union, enclosing


def detection_loss(out, t, cfg):
    cls_logits, ltrb, q_logits = out
    loss_cfg = cfg["loss"]
    num_pos = t["positive"].shape[0]
    norm = float(max(num_pos, 1))
    labels, w = t["labels"], t["cls_weight"]
    logits = cls_logits.float()
    p = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    p_t = p * labels + (1 - p) * (1 - labels)
    alpha = loss_cfg["focal_alpha"]
    alpha_t = labels * alpha + (1 - labels) * (1 - alpha)
    cls = (ce * (1 - p_t).pow(loss_cfg["focal_gamma"]) * alpha_t * w).sum() / norm
    pred = ltrb.float().reshape(-1, 4).index_select(0, t["positive"])
    ql = q_logits.float().reshape(-1).index_select(0, t["positive"])
    inter, union, enclosing = ltrb_areas(pred, t["ltrb"])
    union = union.clamp(min=1e-6)
    iou = inter / union
    giou = iou - (enclosing - union) / enclosing.clamp(min=1e-6)
    box = ((1 - giou) * t["weight"]).sum() / norm
    if cfg["head"]["quality"] == "centerness":
        q_target = t["centerness"]
    else:
        q_target = iou.detach()
    quality = F.binary_cross_entropy_with_logits(ql, q_target, weight=t["weight"], reduction="sum") / norm
    return loss_cfg["cls_weight"] * cls + loss_cfg["box_weight"] * box + loss_cfg["quality_weight"] * quality


def read_safetensors(path, device):
    dtypes = {"F32": torch.float32, "I64": torch.int64}
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        t = torch.frombuffer(bytearray(data[a:b]), dtype=dtypes[v["dtype"]]).reshape(v["shape"])
        out[k] = t.to(device)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--targets", required=True)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--size", type=int)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--sgd",
        choices=["default", "foreach", "for-loop"],
        default="default",
        help="torch.optim.SGD implementation (default: PyTorch's choice, foreach on CUDA)",
    )
    ap.add_argument("--describe", action="store_true", help="print parameter and location counts, train nothing")
    args = ap.parse_args()
    with open(args.config, "rb") as f:
        cfg = tomllib.load(f)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    size = args.size or cfg["input"]["size"]
    model = Detector(cfg).to(device)
    targets = read_safetensors(args.targets, device)
    images = torch.randn(args.batch, cfg["input"]["slices"], size, size, device=device)
    if targets["labels"].shape[0] != args.batch:
        raise SystemExit(f"targets are for batch {targets['labels'].shape[0]}, not {args.batch}")
    with torch.no_grad():
        locations = model(images[:1])[0].shape[1]
    if locations != targets["labels"].shape[1]:
        raise SystemExit(f"{locations} locations here, {targets['labels'].shape[1]} in the targets")
    if args.describe:
        params = sum(p.numel() for p in model.parameters())
        print(json.dumps({"params": params, "locations": locations}))
        return
    foreach = {"default": None, "foreach": True, "for-loop": False}[args.sgd]
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4, foreach=foreach)
    times = []
    for i in range(args.warmup + args.steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss = detection_loss(model(images), targets, cfg)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    print(json.dumps({"step_s": times, "median_s": statistics.median(times), "loss": loss.item()}))


if __name__ == "__main__":
    main()
