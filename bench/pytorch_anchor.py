#!/usr/bin/python3
"""PyTorch anchor for lowbit's benchmarks: the same reference CNN, data, batch size and
optimizer, run with Debian's python3-torch in the same benchmark run as lowbit.

  pytorch_anchor.py fp32-epoch [--steps N]    one FP32 training epoch (Adam, batch 128)
  pytorch_anchor.py qat-epoch  [--steps N]    one eager-mode W8A8 QAT epoch (torch.ao, fbgemm qconfig)
  pytorch_anchor.py infer                     inference latency, FP32 and int8 (eager PTQ with the fbgemm qconfig,
                                              run by this build's default quantized engine: onednn in Debian's
                                              1.13, which has no fbgemm), batch 1 and 256
  pytorch_anchor.py gpt-fp32 [--steps N --batch-size B --layers L --width D --heads H --context T]
                                              FP32 training steps of gpt-tiny written in PyTorch eager (same
                                              architecture and parameter count as lowbit's, AdamW, clip 1.0,
                                              random byte windows of the fortunes texts); steady-state step time
  pytorch_anchor.py qat-accuracy [--seed S --fp32-epochs E --qat-epochs Q]
                                              FP32 training, then W8A8 eager QAT, then convert to int8:
                                              test accuracy of each (the accuracy anchor of docs/RESULTS.md)

Prints one JSON object: {"mode", "seconds", "steps", "images_per_s", "threads", "accuracy"?}.
Not part of lowbit: it exists only to measure the tool a user would otherwise pick.
"""
import argparse
import gzip
import json
import math
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
    # The qconfig only sets observers (fbgemm's: reduce_range); the kernels are the build's engine.
    out = {"mode": "infer", "threads": args.threads, "torch": torch.__version__, "qconfig": "fbgemm",
           "engine": torch.backends.quantized.engine, "results": []}
    with torch.no_grad():
        for name, model in (("pytorch-fp32", fp32), ("pytorch-int8", int8)):
            for batch, iterations in ((1, 200), (256, 30)):
                ms = median_ms(model, x[:batch], iterations)
                out["results"].append({"runtime": name, "batch": batch, "ms_median": round(ms, 4),
                                       "items_per_s": round(batch / ms * 1e3, 1)})
    print(json.dumps(out))


def train_epochs(model, x, y, epochs, lr, batch_size, seed, weight_decay):
    """AdamW with a cosine schedule to zero over all steps, as lowbit's trainer does."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}],
                            lr=lr)
    steps_per_epoch = (x.shape[0] + batch_size - 1) // batch_size
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: 0.5 * (1 + np.cos(np.pi * min(step, epochs * steps_per_epoch) / (epochs * steps_per_epoch))))
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(x.shape[0], generator=gen)
        for i in range(0, x.shape[0], batch_size):
            idx = perm[i:i + batch_size]
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x[idx]), y[idx]).backward()
            opt.step()
            sched.step()


def accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(x[i:i + 256]).argmax(1) for i in range(0, x.shape[0], 256)])
    return float((pred == y).float().mean())


def qat_accuracy(args):
    """FP32 for --fp32-epochs, then W8A8 eager QAT (fbgemm qconfig, fused conv-bn-relu) for
    --qat-epochs at half the learning rate, then torch.ao convert to int8; test accuracies."""
    torch.manual_seed(args.seed)
    x, y = load("train", args.data)
    tx, ty = load("test", args.data)
    fp32 = RefCNN(qat=False)
    train_epochs(fp32, x, y, args.fp32_epochs, 1e-3, args.batch_size, args.seed, 5e-4)
    fp32_acc = accuracy(fp32, tx, ty)
    model = RefCNN(qat=True)
    model.load_state_dict(fp32.state_dict(), strict=False)
    model.train()
    model.qconfig = torch.ao.quantization.get_default_qat_qconfig("fbgemm")
    torch.ao.quantization.fuse_modules_qat(
        model, [["conv1", "bn1", "relu1"], ["conv2", "bn2", "relu2"], ["fc1", "relu3"]], inplace=True)
    torch.ao.quantization.prepare_qat(model, inplace=True)
    train_epochs(model, x, y, args.qat_epochs, 5e-4, args.batch_size, args.seed + 1, 0.0)
    fake_acc = accuracy(model, tx, ty)
    int8 = torch.ao.quantization.convert(model.eval(), inplace=False)
    print(json.dumps({"mode": "qat-accuracy", "seed": args.seed, "fp32_epochs": args.fp32_epochs,
                      "qat_epochs": args.qat_epochs, "fp32_accuracy": fp32_acc, "qat_fake_accuracy": fake_acc,
                      "int8_accuracy": accuracy(int8, tx, ty), "torch": torch.__version__}))


class GptTiny(nn.Module):
    """lowbit's gpt-tiny (src/models/gpt.cpp) in PyTorch eager, written as a PyTorch user would:
    RMSNorm (eps 1e-5), q/k/v/o projections without bias, rotary embedding on interleaved pairs
    with cos/sin precomputed once, causal softmax attention, SwiGLU MLP, float head."""

    def __init__(self, layers, width, heads, context, rope_base=10000.0):
        super().__init__()
        hidden = ((8 * width + 2) // 3 + 31) // 32 * 32
        self.heads = heads
        self.embed = nn.Embedding(256, width)
        self.blocks = nn.ModuleList()
        for _ in range(layers):
            b = nn.Module()
            b.norm1 = nn.Parameter(torch.ones(width))
            b.q, b.k, b.v, b.o = (nn.Linear(width, width, bias=False) for _ in range(4))
            b.norm2 = nn.Parameter(torch.ones(width))
            b.gate, b.up = nn.Linear(width, hidden, bias=False), nn.Linear(width, hidden, bias=False)
            b.down = nn.Linear(hidden, width, bias=False)
            self.blocks.append(b)
        self.norm_f = nn.Parameter(torch.ones(width))
        self.head = nn.Linear(width, 256, bias=False)
        hd = width // heads
        inv = rope_base ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)
        angle = torch.outer(torch.arange(context, dtype=torch.float64), inv)
        self.register_buffer("cos", angle.cos().float())
        self.register_buffer("sin", angle.sin().float())
        self.register_buffer("future", torch.ones(context, context, dtype=torch.bool).triu(1))

    @staticmethod
    def rms(x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * w

    def rope(self, x):
        t = x.shape[-2]
        pairs = x.unflatten(-1, (-1, 2))
        a, b = pairs[..., 0], pairs[..., 1]
        c, s = self.cos[:t], self.sin[:t]
        return torch.stack((a * c - b * s, a * s + b * c), -1).flatten(-2)

    def forward(self, ids):
        n, t = ids.shape
        x = self.embed(ids)
        for b in self.blocks:
            h = self.rms(x, b.norm1)
            split = lambda z: z.view(n, t, self.heads, -1).transpose(1, 2)
            q, k, v = self.rope(split(b.q(h))), self.rope(split(b.k(h))), split(b.v(h))
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
            scores = scores.masked_fill(self.future[:t, :t], float("-inf"))
            y = (torch.softmax(scores, -1) @ v).transpose(1, 2).reshape(n, t, -1)
            x = x + b.o(y)
            h = self.rms(x, b.norm2)
            x = x + b.down(nn.functional.silu(b.gate(h)) * b.up(h))
        return self.head(self.rms(x, self.norm_f))


def gpt_fp32(args):
    text = b"".join(open(os.path.join(args.text, f), "rb").read() for f in sorted(os.listdir(args.text))
                    if not f.endswith(".dat") and not f.endswith(".u8")
                    and os.path.isfile(os.path.join(args.text, f)))
    data = torch.frombuffer(bytearray(text), dtype=torch.uint8).long()
    torch.manual_seed(args.seed)
    model = GptTiny(args.layers, args.width, args.heads, args.context)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    gen = torch.Generator().manual_seed(args.seed)
    times = []
    for step in range(args.steps):
        starts = torch.randint(0, data.numel() - args.context - 1, (args.batch_size,), generator=gen)
        w = torch.stack([data[s:s + args.context + 1] for s in starts.tolist()])
        t0 = time.perf_counter()
        logits = model(w[:, :-1])
        loss = nn.functional.cross_entropy(logits.reshape(-1, 256), w[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        times.append(time.perf_counter() - t0)
    steady = sorted(times[min(5, len(times) - 1):])
    print(json.dumps({"mode": "gpt-fp32", "parameters": params, "steps": args.steps,
                      "median_step_ms": round(1e3 * steady[len(steady) // 2], 3),
                      "mean_step_ms": round(1e3 * sum(steady) / len(steady), 3),
                      "bytes_per_s": round(args.batch_size * args.context * len(steady) / sum(steady), 1),
                      "final_loss": round(loss.item(), 4), "threads": args.threads, "torch": torch.__version__}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["fp32-epoch", "qat-epoch", "infer", "qat-accuracy", "gpt-fp32"])
    ap.add_argument("--data", default=os.environ.get("LOWBIT_DATA", "/usr/share/datasets/fashion-mnist"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=0, help="stop after N steps (0 = whole epoch)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fp32-epochs", type=int, default=2)
    ap.add_argument("--qat-epochs", type=int, default=1)
    ap.add_argument("--text", default="/usr/share/games/fortunes", help="gpt-fp32: folder of text files")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--context", type=int, default=128)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.mode == "infer":
        return infer(args)
    if args.mode == "qat-accuracy":
        return qat_accuracy(args)
    if args.mode == "gpt-fp32":
        return gpt_fp32(args)
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
