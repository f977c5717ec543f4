"""PyTorch twin of examples/surface_bench.rs (run by `cargo xtask bench surface`).

Reads the weights, directions, grid and data that `surface_bench write` wrote
and evaluates every grid point w0 + a d1 + b d2 of the same paper network
(conv 3x3/2 -> BatchNorm2d(affine=False) -> ReLU, x4, conv to 10 logits),
one point at a time as Li et al.'s loss-landscape does (`crunch` in
plot_surface.py: set the weights, then one pass over the data loader per
point). Prints one JSON line like the Rust side.

Modes:
- `exact`: the same numbers as landscape: BN statistics re-estimated exactly
  on the training set before each point (layer by layer: layer l's mean and
  unbiased variance over the whole set, the layers below in eval mode with
  their fresh statistics), then the training and test sets in eval mode.
- `loss-landscape`: what loss-landscape computes: `net.eval()` with the BN
  statistics of the centre model for every point (no re-estimation; one pass
  over each set). Less work, and another (stale-statistics) loss.
- `grouped`: `exact`, with K points evaluated at once as one network whose
  convolutions are grouped (K models side by side, `groups=K`); the batching
  a GPU rewards. Reported for reference (per point).
"""
import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

WIDTHS = (32, 64, 152, 56)


def paper_net(widths=WIDTHS, classes=10):
    layers, cin = [], 3
    for w in widths:
        layers += [nn.Conv2d(cin, w, 3, 2, 1), nn.BatchNorm2d(w, affine=False), nn.ReLU()]
        cin = w
    layers += [nn.Conv2d(cin, classes, 3, 2, 1), nn.Flatten()]
    return nn.Sequential(*layers)


def landscape_to_sequential(name):
    """`layer3.weight` -> `3.weight`, `layer3.bn.running_mean` -> `4.running_mean`."""
    layer, rest = name.split(".", 1)
    i = int(layer[len("layer"):]) - 2
    if rest.startswith("bn."):
        return f"{3 * i + 1}.{rest[3:]}"
    return f"{3 * i}.{rest}"


def load(d):
    m = json.load(open(os.path.join(d, "manifest.json")))
    f32 = lambda f: np.fromfile(os.path.join(d, f), dtype="<f4")
    u8 = lambda f: np.fromfile(os.path.join(d, f), dtype=np.uint8)
    tx = torch.from_numpy(f32("train_x.f32").copy()).view(-1, 3, 32, 32)
    ex = torch.from_numpy(f32("test_x.f32").copy()).view(-1, 3, 32, 32)
    ty = torch.from_numpy(u8("train_y.u8").astype(np.int64))
    ey = torch.from_numpy(u8("test_y.u8").astype(np.int64))
    flats = [f32(f).astype(np.float64) for f in ("w0.f32", "d1.f32", "d2.f32")]
    return m, tx, ty, ex, ey, flats


def state_at(m, flats, a, b):
    w0, d1, d2 = flats
    flat = (w0 + a * d1 + b * d2).astype(np.float32)
    out, off = {}, 0
    for t in m["tensors"]:
        n = int(np.prod(t["shape"]))
        out[landscape_to_sequential(t["name"])] = torch.from_numpy(flat[off:off + n].copy()).view(t["shape"])
        off += n
    return out


@torch.no_grad()
def reestimate(net, x, chunk):
    mods = list(net)
    for li in range(len(WIDTHS)):
        conv, bn = mods[3 * li], mods[3 * li + 1]
        count, mean, m2 = 0, None, None
        for s in range(0, len(x), chunk):
            h = x[s:s + chunk]
            for j in range(3 * li):
                h = mods[j](h)
            z = conv(h).double()
            cnt = z.shape[0] * z.shape[2] * z.shape[3]
            cm = z.mean((0, 2, 3))
            cv = z.var((0, 2, 3), unbiased=False)
            if mean is None:
                mean, m2 = torch.zeros_like(cm), torch.zeros_like(cm)
            tot = count + cnt
            delta = cm - mean
            mean = mean + delta * cnt / tot
            m2 = m2 + cv * cnt + delta * delta * count * cnt / tot
            count = tot
        bn.running_mean.copy_(mean.float())
        bn.running_var.copy_((m2 / (count - 1)).float())


@torch.no_grad()
def evaluate(net, x, y, chunk):
    total = 0.0
    for s in range(0, len(x), chunk):
        total += F.cross_entropy(net(x[s:s + chunk]), y[s:s + chunk], reduction="sum").item()
    return total / len(x)


@torch.no_grad()
def grouped_points(states, tx, ty, ex, ey, chunk):
    """K points at once: every convolution grouped (K models side by side)."""
    k = len(states)
    convs = []
    for li in range(len(WIDTHS) + 1):
        w = torch.cat([s[f"{3 * li}.weight"] for s in states])
        b = torch.cat([s[f"{3 * li}.bias"] for s in states])
        convs.append((w, b))
    conv = lambda h, li: F.conv2d(h, convs[li][0], convs[li][1], stride=2, padding=1, groups=k)
    stats = []
    # Exact re-estimation, layer by layer, on the grouped network.
    for li in range(len(WIDTHS)):
        zs = []
        for s in range(0, len(tx), chunk):
            h = tx[s:s + chunk].repeat(1, k, 1, 1)
            for j in range(li):
                h = F.relu(F.batch_norm(conv(h, j), stats[j][0], stats[j][1], training=False))
            zs.append(conv(h, li).double())
        z = torch.cat(zs)
        stats.append((z.mean((0, 2, 3)).float(), z.var((0, 2, 3)).float()))

    def ev(x, y):
        tot = torch.zeros(k, dtype=torch.float64)
        for s in range(0, len(x), chunk):
            h = x[s:s + chunk].repeat(1, k, 1, 1)
            for j in range(len(WIDTHS)):
                h = F.relu(F.batch_norm(conv(h, j), stats[j][0], stats[j][1], training=False))
            o = conv(h, len(WIDTHS)).flatten(2).mean(2).view(-1, k, 10).permute(0, 2, 1)
            lab = y[s:s + chunk, None].expand(-1, k)
            tot += F.cross_entropy(o, lab, reduction="none").double().sum(0)
        return (tot / len(x)).tolist()

    return ev(tx, ty), ev(ex, ey)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["exact", "loss-landscape", "grouped"])
    p.add_argument("--dir", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--group", type=int, default=4)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    m, tx, ty, ex, ey, flats = load(a.dir)
    chunk = m["chunk"]
    net = paper_net().eval()
    centre = state_at(m, flats, 0.0, 0.0)
    secs, trl, tel = [], [], []
    grid = m["grid"]
    if a.mode == "grouped":
        for s in range(0, len(grid), a.group):
            pts = grid[s:s + a.group]
            t = time.perf_counter()
            states = [state_at(m, flats, x, y) for x, y in pts]
            tr, te = grouped_points(states, tx, ty, ex, ey, chunk)
            dt = time.perf_counter() - t
            secs += [dt / len(pts)] * len(pts)
            trl += tr
            tel += te
    else:
        for x, y in grid:
            t = time.perf_counter()
            st = state_at(m, flats, x, y)
            if a.mode == "loss-landscape":
                # The centre's BN statistics for every point, as net.eval() keeps them.
                for k in st:
                    if "running" in k:
                        st[k] = centre[k]
            net.load_state_dict(st, strict=False)
            if a.mode == "exact":
                reestimate(net, tx, chunk)
            trl.append(evaluate(net, tx, ty, chunk))
            tel.append(evaluate(net, ex, ey, chunk))
            secs.append(time.perf_counter() - t)
    print(json.dumps({"impl": "pytorch-" + a.mode, "threads": a.threads, "points": len(grid),
                      "seconds": secs, "train_loss": trl, "test_loss": tel}))


if __name__ == "__main__":
    main()
