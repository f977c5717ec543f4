"""PyHessian-style twin of crates/probe/examples/hessian_bench.rs (run by
`cargo xtask bench hessian`).

Reads the model (paper network, weights and BN running statistics), the
images, labels and probe vector that the Rust side exported to --dir (raw
little-endian arrays described by meta.json), builds the same network in
PyTorch in eval mode (BN with the running statistics, as PyHessian does with
`model.eval()`), and times what PyHessian (github.com/amirgholami/PyHessian,
pyhessian/hessian.py) does, without importing it:

* `hvp`: Hessian-vector products of the mean cross-entropy over all images.
  `--graph keep` is PyHessian's single-batch mode (`hessian(model, criterion,
  data=(x, y))`): `loss.backward(create_graph=True)` once (timed separately as
  setup), then each product is `torch.autograd.grad(grads, params,
  grad_outputs=v, retain_graph=True)`. `--graph rebuild` is its dataloader
  mode (`dataloader=...`): every product runs the forward pass and the
  backward pass with `create_graph=True` again, chunk by chunk, then the
  double backward. The first product of the exported vector is written to
  hv_pytorch_<graph>.f64 for the agreement check.
* `eig`: the top eigenvalue by PyHessian's power iteration
  (`hessian.eigenvalues(maxIter=100, tol=1e-3, top_n=1)`): Rayleigh quotient
  of the current vector, stop when it changes by less than tol relative to
  the last one, in single-batch mode (setup included in the time).

Prints one JSON line like the Rust side.
"""
import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from train_bench import paper_net


def load(d):
    with open(os.path.join(d, "meta.json")) as f:
        meta = json.load(f)

    def arr(entry):
        a = np.fromfile(os.path.join(d, entry["file"]), dtype=entry["dtype"])
        return a.reshape(entry["shape"])

    model = paper_net(tuple(meta["widths"]))
    convs = [m for m in model if isinstance(m, torch.nn.Conv2d)]
    bns = [m for m in model if isinstance(m, torch.nn.BatchNorm2d)]
    tensors = {t["name"]: arr(t) for t in meta["tensors"]}
    with torch.no_grad():
        for i, conv in enumerate(convs):
            n = i + 2  # paper layer numbers start at 2
            conv.weight.copy_(torch.from_numpy(tensors[f"layer{n}.weight"]))
            conv.bias.copy_(torch.from_numpy(tensors[f"layer{n}.bias"]))
        for i, bn in enumerate(bns):
            n = i + 2
            bn.running_mean.copy_(torch.from_numpy(tensors[f"layer{n}.bn.running_mean"]))
            bn.running_var.copy_(torch.from_numpy(tensors[f"layer{n}.bn.running_var"]))
    model.eval()
    images = torch.from_numpy(arr(meta["images"]).copy())
    labels = torch.from_numpy(arr(meta["labels"]).astype(np.int64))
    v = torch.from_numpy(arr(meta["vector"]).astype(np.float32))
    return meta, model, images, labels, v


def split(flat, params):
    out, at = [], 0
    for p in params:
        n = p.numel()
        out.append(flat[at:at + n].view_as(p))
        at += n
    return out


def flat(ts):
    return torch.cat([t.reshape(-1) for t in ts])


class KeptGraph:
    """PyHessian's single-batch mode: the gradient graph is built once."""

    def __init__(self, model, x, y):
        self.params = [p for p in model.parameters() if p.requires_grad]
        loss = F.cross_entropy(model(x), y)
        loss.backward(create_graph=True)
        self.grads = [p.grad for p in self.params]

    def hvp(self, vs):
        return torch.autograd.grad(self.grads, self.params, grad_outputs=vs,
                                   only_inputs=True, retain_graph=True)


class Rebuilt:
    """PyHessian's dataloader mode: forward and backward again for every product."""

    def __init__(self, model, x, y, chunk):
        self.model, self.x, self.y, self.chunk = model, x, y, chunk
        self.params = [p for p in model.parameters() if p.requires_grad]

    def hvp(self, vs):
        n = self.x.shape[0]
        acc = [torch.zeros_like(p) for p in self.params]
        for s in range(0, n, self.chunk):
            xb, yb = self.x[s:s + self.chunk], self.y[s:s + self.chunk]
            self.model.zero_grad()
            loss = F.cross_entropy(self.model(xb), yb)
            loss.backward(create_graph=True)
            grads = [p.grad for p in self.params]
            hv = torch.autograd.grad(grads, self.params, grad_outputs=vs,
                                     only_inputs=True, retain_graph=False)
            for a, h in zip(acc, hv):
                a.add_(h.detach(), alpha=xb.shape[0] / n)
        return acc


def power_iteration(h, params, max_iter, tol, seed):
    """PyHessian's hessian.eigenvalues(top_n=1): returns (eigenvalue, products)."""
    g = torch.Generator().manual_seed(seed)
    v = [torch.randn(p.size(), generator=g) for p in params]
    norm = torch.sqrt(sum((x * x).sum() for x in v))
    v = [x / (norm + 1e-6) for x in v]
    eigenvalue, products = None, 0
    for _ in range(max_iter):
        hv = h.hvp(v)
        products += 1
        tmp = sum((a * b).sum() for a, b in zip(hv, v)).item()
        norm = torch.sqrt(sum((x * x).sum() for x in hv))
        v = [x / (norm + 1e-6) for x in hv]
        if eigenvalue is None:
            eigenvalue = tmp
        elif abs(eigenvalue - tmp) / (abs(eigenvalue) + 1e-6) < tol:
            eigenvalue = tmp
            break
        else:
            eigenvalue = tmp
    return eigenvalue, products


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["hvp", "eig"])
    p.add_argument("--dir", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--products", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--chunk", type=int, default=1000)
    p.add_argument("--graph", choices=["keep", "rebuild"], default="keep")
    p.add_argument("--tol", type=float, default=1e-3)
    p.add_argument("--max-iter", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    meta, model, x, y, v = load(a.dir)
    params = [q for q in model.parameters() if q.requires_grad]
    n = x.shape[0]
    if a.mode == "hvp":
        t = time.perf_counter()
        h = KeptGraph(model, x, y) if a.graph == "keep" else Rebuilt(model, x, y, a.chunk)
        setup = time.perf_counter() - t
        vs = split(v, params)
        secs = []
        for i in range(a.warmup + a.products):
            t = time.perf_counter()
            hv = h.hvp(vs)
            dt = time.perf_counter() - t
            if i == 0:
                flat(hv).double().numpy().tofile(os.path.join(a.dir, f"hv_pytorch_{a.graph}.f64"))
            if i >= a.warmup:
                secs.append(dt)
        print(json.dumps({"impl": f"pytorch-{a.graph}", "mode": "hvp", "threads": a.threads,
                          "images": n, "setup": setup, "seconds": secs}))
    else:
        t = time.perf_counter()
        h = KeptGraph(model, x, y)
        lam, products = power_iteration(h, params, a.max_iter, a.tol, a.seed)
        dt = time.perf_counter() - t
        print(json.dumps({"impl": "pytorch-power", "mode": "eig", "threads": a.threads,
                          "images": n, "eigenvalue": lam, "products": products,
                          "seconds": [dt]}))


if __name__ == "__main__":
    main()
