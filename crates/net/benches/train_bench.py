"""PyTorch-eager twin of examples/train_bench.rs (run by `cargo xtask bench train`).

Same network (paper widths 32,64,152,56: conv 3x3/2 -> BatchNorm2d(affine=False)
-> ReLU, x4, then conv to 10 logits), same synthetic data sizes, the textbook
eager loop: index a batch, zero_grad, forward, cross_entropy, backward,
torch.optim.SGD.step, loss.item(). Prints one JSON line like the Rust side.
`--channels-last` runs the same loop with model and data in
torch.channels_last, the layout landscape-net uses (reported for reference).
Also `gemm` mode: single-precision GEMM throughput of torch.mm (GFLOP/s).
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def paper_net(widths=(32, 64, 152, 56), classes=10):
    layers, cin = [], 3
    for w in widths:
        layers += [nn.Conv2d(cin, w, 3, 2, 1), nn.BatchNorm2d(w, affine=False), nn.ReLU()]
        cin = w
    layers += [nn.Conv2d(cin, classes, 3, 2, 1), nn.Flatten()]
    return nn.Sequential(*layers)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["sgd", "bgd", "gemm"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--chunk", type=int, default=500)
    p.add_argument("--size", type=int, default=2048)
    p.add_argument("--device", default="cpu")
    p.add_argument("--channels-last", action="store_true",
                   help="model and data in torch.channels_last (what landscape-net uses internally)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    if a.mode == "gemm":
        x = torch.randn(a.size, a.size, device=dev)
        y = torch.randn(a.size, a.size, device=dev)
        torch.mm(x, y)
        sync()
        secs = []
        for _ in range(a.epochs):
            t = time.perf_counter()
            torch.mm(x, y)
            sync()
            secs.append(time.perf_counter() - t)
        print(json.dumps({"impl": "pytorch", "mode": "gemm", "threads": a.threads, "size": a.size,
                          "flops": 2 * a.size ** 3, "seconds": secs}))
        return
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(a.images, 3, 32, 32, generator=g) * 3.4 - 1.7).to(dev)
    labels = torch.randint(0, 10, (a.images,), generator=g).to(dev)
    torch.manual_seed(0)
    model = paper_net().to(dev).train()
    if a.channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    n = a.images
    secs = []
    for epoch in range(a.warmup + a.epochs):
        t = time.perf_counter()
        if a.mode == "sgd":
            perm = torch.randperm(n, device=dev)
            for start in range(0, n, a.batch):
                idx = perm[start:start + a.batch]
                x, y = images[idx], labels[idx]
                opt.zero_grad()
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                opt.step()
                loss.item()
        else:
            opt.zero_grad()
            for start in range(0, n, a.chunk):
                x, y = images[start:start + a.chunk], labels[start:start + a.chunk]
                loss = F.cross_entropy(model(x), y, reduction="sum")
                (loss / n).backward()
                loss.item()
            opt.step()
        sync()
        if epoch >= a.warmup:
            secs.append(time.perf_counter() - t)
    params = sum(p.numel() for p in model.parameters())
    name = "pytorch-channels-last" if a.channels_last else "pytorch"
    print(json.dumps({"impl": name, "mode": a.mode, "threads": a.threads, "images": n,
                      "params": params, "seconds": secs}))


if __name__ == "__main__":
    main()
