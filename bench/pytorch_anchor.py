#!/usr/bin/python3
"""PyTorch anchor for lowbit's benchmarks: the same reference CNN, data, batch size and
optimizer, run with Debian's python3-torch in the same benchmark run as lowbit.

  pytorch_anchor.py fp32-epoch [--steps N]    one FP32 training epoch (Adam, batch 128)
  pytorch_anchor.py qat-epoch  [--steps N]    one eager-mode W8A8 QAT epoch (torch.ao, fbgemm qconfig)
  pytorch_anchor.py infer                     inference latency, FP32 and int8 (eager PTQ, fbgemm), batch 1 and 256

Prints one JSON object: {"mode", "seconds", "steps", "images_per_s", "threads", "accuracy"?}.
Not part of lowbit: it exists only to measure the tool a user would otherwise pick.
"""
import argparse
import gzip
import json
import os
import struct
import time

import numpy as np
import torch
import torch.nn as nn


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack(">I", data[:4])[0]
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(split, data_dir):
    prefix = "train" if split == "train" else "t10k"
    x = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    x = torch.from_numpy(x.astype(np.float32) / 255.0).unsqueeze(1)
    return x, torch.from_numpy(y.astype(np.int64))


class RefCNN(nn.Module):
    """conv(1->32,3x3)-BN-ReLU-maxpool, conv(32->64,3x3)-BN-ReLU-maxpool, fc 3136->128 ReLU, fc 128->10."""

    def __init__(self, qat=False):
        super().__init__()
        self.quant = torch.ao.quantization.QuantStub() if qat else nn.Identity()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(3136, 128)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(128, 10)
        self.dequant = torch.ao.quantization.DeQuantStub() if qat else nn.Identity()

    def forward(self, x):
        x = self.quant(x)
        x = self.pool1(self.relu1(self.bn1(self.conv1(x))))
        x = self.pool2(self.relu2(self.bn2(self.conv2(x))))
        x = torch.flatten(x, 1)
        x = self.relu3(self.fc1(x))
        return self.dequant(self.fc2(x))


def build(mode):
    torch.manual_seed(0)
    if mode == "fp32-epoch":
        return RefCNN(qat=False)
    model = RefCNN(qat=True)
    model.train()
    model.qconfig = torch.ao.quantization.get_default_qat_qconfig("fbgemm")
    torch.ao.quantization.fuse_modules_qat(
        model, [["conv1", "bn1", "relu1"], ["conv2", "bn2", "relu2"], ["fc1", "relu3"]], inplace=True)
    torch.ao.quantization.prepare_qat(model, inplace=True)
    return model


def median_ms(fn, x, iterations):
    for _ in range(3):
        fn(x)
    times = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        fn(x)
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return times[len(times) // 2]


def infer(args):
    """Median latency of the reference CNN (untrained weights: speed does not depend on them)."""
    x, _ = load("test", args.data)
    fp32 = RefCNN(qat=False).eval()
    int8 = RefCNN(qat=True).eval()
    int8.qconfig = torch.ao.quantization.get_default_qconfig("fbgemm")
    torch.ao.quantization.fuse_modules(int8, [["conv1", "bn1", "relu1"], ["conv2", "bn2", "relu2"], ["fc1", "relu3"]],
                                       inplace=True)
    torch.ao.quantization.prepare(int8, inplace=True)
    with torch.no_grad():
        int8(x[:512])
    torch.ao.quantization.convert(int8, inplace=True)
    out = {"mode": "infer", "threads": args.threads, "torch": torch.__version__, "engine": "fbgemm", "results": []}
    with torch.no_grad():
        for name, model in (("pytorch-fp32", fp32), ("pytorch-int8", int8)):
            for batch, iterations in ((1, 200), (256, 30)):
                ms = median_ms(model, x[:batch], iterations)
                out["results"].append({"runtime": name, "batch": batch, "ms_median": round(ms, 4),
                                       "items_per_s": round(batch / ms * 1e3, 1)})
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["fp32-epoch", "qat-epoch", "infer"])
    ap.add_argument("--data", default=os.environ.get("LOWBIT_DATA", "/usr/share/datasets/fashion-mnist"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=0, help="stop after N steps (0 = whole epoch)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.mode == "infer":
        return infer(args)
    x, y = load("train", args.data)
    model = build(args.mode)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(0))
    steps = 0
    t0 = time.perf_counter()
    for i in range(0, x.shape[0], args.batch_size):
        idx = perm[i:i + args.batch_size]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
        steps += 1
        if args.steps and steps >= args.steps:
            break
    seconds = time.perf_counter() - t0
    images = min(steps * args.batch_size, x.shape[0])
    print(json.dumps({"mode": args.mode, "seconds": round(seconds, 3), "steps": steps,
                      "images_per_s": round(images / seconds, 1), "threads": args.threads,
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
