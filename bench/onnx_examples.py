#!/usr/bin/env python3
"""The "bring your own model" examples: two models trained briefly in PyTorch on Fashion-MNIST and
exported to ONNX, as a user would arrive with them (docs/onnx_import.md, bench/onnx_import_study.sh).

  small-resnet   stem conv + BN + ReLU, three basic blocks (two with a 1x1 projection shortcut),
                 global average pooling, linear
  mobilenetv2    stem conv + BN + ReLU6, inverted residual blocks (1x1 expand + ReLU6, 3x3
                 depthwise + ReLU6, 1x1 linear projection, residual add when the shape allows),
                 global average pooling, linear
  mobilenetv3    MobileNetV3-style activations without squeeze-excitation: stem conv + BN +
                 hardswish, inverted residual blocks whose expansion uses SiLU or hardswish and
                 whose depthwise conv uses hardswish or LeakyReLU; PyTorch 1.13 exports hardswish
                 as x * HardSigmoid(x) and SiLU as x * Sigmoid(x) at opset 13
  dense-inception  concatenation and dilation: an Inception block (1x1, 3x3, 3x3 dilated by 2,
                 3x3 max pool, concatenated), a strided conv, two DenseNet layers (torch.cat of
                 each conv's output with its input), global average pooling, linear

Inputs are [N, 1, 28, 28] in [0, 1] (pixel / 255, as lowbit reads Fashion-MNIST); outputs are 10
logits. Needs Debian's python3-torch (scripts/setup.sh --bench); not used by the tests.

  python3 bench/onnx_examples.py train --out DIR [--epochs 2] [--models a,b]   # DIR/<model>.onnx, DIR/pytorch.json
  python3 bench/onnx_examples.py bench --out DIR                # PyTorch FP32 and int8 latency (JSON)
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_anchor import load, median_ms  # noqa: E402  (Fashion-MNIST as lowbit reads it; timing)


def conv_bn(cin, cout, k, stride=1, groups=1, dilation=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, dilation * (k // 2), groups=groups, dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = conv_bn(cin, cout, 3, stride)
        self.conv2 = conv_bn(cout, cout, 3)
        self.shortcut = conv_bn(cin, cout, 1, stride) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x):
        h = self.conv2(F.relu(self.conv1(x)))
        return F.relu(h + self.shortcut(x))


class SmallResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = conv_bn(1, 16, 3)
        self.layer1 = BasicBlock(16, 16, 1)
        self.layer2 = BasicBlock(16, 32, 2)
        self.layer3 = BasicBlock(32, 64, 2)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = F.relu(self.stem(x))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand, expand_act=None, depthwise_act=None):
        super().__init__()
        hidden = cin * expand
        self.expand = conv_bn(cin, hidden, 1)
        self.depthwise = conv_bn(hidden, hidden, 3, stride, groups=hidden)
        self.project = conv_bn(hidden, cout, 1)
        self.expand_act = expand_act or nn.ReLU6()
        self.depthwise_act = depthwise_act or nn.ReLU6()
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        h = self.project(self.depthwise_act(self.depthwise(self.expand_act(self.expand(x)))))
        return x + h if self.residual else h


class MobileNetV2Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = conv_bn(1, 16, 3)
        self.blocks = nn.Sequential(
            InvertedResidual(16, 16, 1, 2), InvertedResidual(16, 24, 2, 4), InvertedResidual(24, 24, 1, 4),
            InvertedResidual(24, 48, 2, 4), InvertedResidual(48, 48, 1, 4))
        self.fc = nn.Linear(48, 10)

    def forward(self, x):
        x = self.blocks(F.relu6(self.stem(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class MobileNetV3Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        hs, silu, leaky = nn.Hardswish(), nn.SiLU(), nn.LeakyReLU(0.1)
        self.stem = conv_bn(1, 16, 3)
        self.blocks = nn.Sequential(
            InvertedResidual(16, 16, 1, 2, silu, hs), InvertedResidual(16, 24, 2, 4, hs, leaky),
            InvertedResidual(24, 24, 1, 4, silu, hs), InvertedResidual(24, 48, 2, 4, hs, hs),
            InvertedResidual(48, 48, 1, 4, silu, leaky))
        self.fc = nn.Linear(48, 10)

    def forward(self, x):
        x = self.blocks(F.hardswish(self.stem(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class DenseInceptionTiny(nn.Module):
    """Concatenations and a dilated conv: an Inception block (1x1, 3x3, 3x3 dilated by 2, and a
    3x3 max pool of its input, concatenated), a strided conv, then two DenseNet layers (each conv's
    output concatenated to its input)."""

    def __init__(self):
        super().__init__()
        self.stem = conv_bn(1, 16, 3, 2)                                   # 14x14
        self.b1, self.b2 = conv_bn(16, 8, 1), conv_bn(16, 8, 3)
        self.b3 = conv_bn(16, 8, 3, dilation=2)
        self.down = conv_bn(40, 32, 3, 2)                                  # 7x7
        self.d1, self.d2 = conv_bn(32, 16, 3), conv_bn(48, 16, 3)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = F.relu(self.stem(x))
        x = torch.cat([F.relu(self.b1(x)), F.relu(self.b2(x)), F.relu(self.b3(x)), F.max_pool2d(x, 3, 1, 1)], 1)
        x = F.relu(self.down(x))
        x = torch.cat([x, F.relu(self.d1(x))], 1)
        x = torch.cat([x, F.relu(self.d2(x))], 1)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


MODELS = {"small-resnet": SmallResNet, "mobilenetv2": MobileNetV2Tiny, "mobilenetv3": MobileNetV3Tiny,
          "dense-inception": DenseInceptionTiny}


def selected(args):
    names = args.models.split(",") if args.models else list(MODELS)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        sys.exit(f"unknown model(s) {unknown}; choose from {list(MODELS)}")
    return {n: MODELS[n] for n in names}


def accuracy(model, x, y, batch=1000):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    return correct / len(x)


def train(args):
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    xtr, ytr = load("train", args.data)
    xte, yte = load("test", args.data)
    results = {}
    for name, cls in selected(args).items():
        torch.manual_seed(args.seed)
        model = cls()
        opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
        steps = args.epochs * (len(xtr) // args.batch_size)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
        g = torch.Generator().manual_seed(args.seed)
        t0 = time.time()
        for _ in range(args.epochs):
            model.train()
            perm = torch.randperm(len(xtr), generator=g)
            for i in range(0, len(xtr) - args.batch_size + 1, args.batch_size):
                idx = perm[i:i + args.batch_size]
                loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
        acc = accuracy(model, xte, yte)
        path = os.path.join(args.out, f"{name}.onnx")
        model.eval()
        torch.onnx.export(model, torch.zeros(1, 1, 28, 28), path, opset_version=13, input_names=["image"],
                          output_names=["logits"], dynamic_axes={"image": {0: "N"}, "logits": {0: "N"}})
        torch.save(model.state_dict(), os.path.join(args.out, f"{name}.pt"))
        params = sum(p.numel() for p in model.parameters())
        results[name] = {"test_accuracy": acc, "params": params, "epochs": args.epochs, "train_seconds": time.time() - t0}
        print(f"{name}: {params} parameters, test accuracy {acc:.4f} after {args.epochs} epochs -> {path}", flush=True)
    summary = os.path.join(args.out, "pytorch.json")
    if os.path.exists(summary):  # a run of a subset (--models) keeps the other models' entries
        with open(summary) as f:
            results = {**json.load(f).get("models", {}), **results}
    with open(summary, "w") as f:
        json.dump({"torch": torch.__version__, "threads": args.threads, "models": results}, f, indent=2)


def bench(args):
    """PyTorch FP32 and int8 (FX graph mode static quantization) latency of each model, on the
    first quantized engine this PyTorch build has of fbgemm, onednn and qnnpack (Debian's 1.13 has
    no fbgemm)."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
    torch.set_num_threads(args.threads)
    engine = next(e for e in ("fbgemm", "onednn", "qnnpack") if e in torch.backends.quantized.supported_engines)
    torch.backends.quantized.engine = engine
    xte, yte = load("test", args.data)
    out = {"torch": torch.__version__, "threads": args.threads, "engine": engine, "models": {}}
    for name, cls in selected(args).items():
        model = cls()
        model.load_state_dict(torch.load(os.path.join(args.out, f"{name}.pt")))
        model.eval()
        prepared = prepare_fx(model, get_default_qconfig_mapping(engine), (xte[:1],))
        with torch.no_grad():
            for i in range(0, 512, 128):
                prepared(xte[i:i + 128])
        int8 = convert_fx(prepared)
        r = {"fp32_accuracy": accuracy(model, xte, yte), "int8_accuracy": accuracy(int8, xte, yte)}
        for batch in (1, 256):
            x = xte[:batch]
            it = args.iterations * (4 if batch == 1 else 1)
            with torch.no_grad():
                r[f"fp32_ms_b{batch}"] = median_ms(model, x, it)
                r[f"int8_ms_b{batch}"] = median_ms(int8, x, it)
        out["models"][name] = r
        print(json.dumps({name: r}), flush=True)
    with open(os.path.join(args.out, "pytorch_bench.json"), "w") as f:
        json.dump(out, f, indent=2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["train", "bench"])
    ap.add_argument("--out", required=True)
    ap.add_argument("--data", default=os.environ.get("LOWBIT_DATA", "/usr/share/datasets/fashion-mnist"))
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", default="", help="comma-separated subset of " + ", ".join(MODELS))
    ap.add_argument("--iterations", type=int, default=30)
    args = ap.parse_args()
    train(args) if args.mode == "train" else bench(args)


if __name__ == "__main__":
    main()
