"""The paper's network in PyTorch, with the names `landscape import` reads.

    from paper_net import paper_net, landscape_state_dict
    model = paper_net()                       # widths 32, 64, 152, 56: 188,810 parameters
    ...train...
    torch.save(model.state_dict(), "model.pt")  # `landscape import --from model.pt --store S`

The architecture (Liao & Poggio's DCNN, as landscape-net builds it): input
3x32x32; four 3x3 convolutions with stride 2 and padding 1, each followed by
BatchNorm2d without affine parameters (eps 1e-5, momentum 0.1) and ReLU; a
last 3x3 stride-2 convolution to the class logits at 1x1. The loss is
softmax cross-entropy. landscape evaluates on CIFAR-10 normalised with the
per-channel mean and standard deviation of the whole training split
(`normalize` below), images in [0, 1] before normalisation, NCHW, RGB.

Names: the nn.Sequential below gives `0.weight`, `0.bias`, `1.running_mean`,
`1.running_var`, `1.num_batches_tracked`, `3.weight`, ..., `12.weight`,
`12.bias`; landscape's own names are `layer2.weight`, `layer2.bias`,
`layer2.bn.running_mean`, `layer2.bn.running_var`, ..., `layer6.weight`,
`layer6.bias` (`landscape_state_dict`). Both are accepted, also under
`module.` (DataParallel) or `_orig_mod.` (torch.compile).
"""
from collections import OrderedDict

import torch
import torch.nn as nn


def paper_net(widths=(32, 64, 152, 56), classes=10):
    """The paper's DCNN as an nn.Sequential (the layout `landscape import` reads)."""
    layers, cin = [], 3
    for w in widths:
        layers += [nn.Conv2d(cin, w, 3, 2, 1), nn.BatchNorm2d(w, affine=False), nn.ReLU()]
        cin = w
    layers += [nn.Conv2d(cin, classes, 3, 2, 1), nn.Flatten()]
    return nn.Sequential(*layers)


def landscape_state_dict(model):
    """The state_dict of `paper_net` under landscape's names (e.g. for safetensors' save_file)."""
    sd = model.state_dict()
    convs = [k[: -len(".weight")] for k, v in sd.items() if k.endswith(".weight") and v.dim() == 4]
    out = OrderedDict()
    for i, c in enumerate(convs):
        out[f"layer{i + 2}.weight"] = sd[f"{c}.weight"]
        out[f"layer{i + 2}.bias"] = sd[f"{c}.bias"]
        bn = f"{int(c) + 1}"
        if i < len(convs) - 1:
            out[f"layer{i + 2}.bn.running_mean"] = sd[f"{bn}.running_mean"]
            out[f"layer{i + 2}.bn.running_var"] = sd[f"{bn}.running_var"]
    return out


# Per-channel mean and (population) standard deviation of the 50,000 CIFAR-10
# training images, pixels in [0, 1]: what landscape normalises with (it
# computes them from the training split; these are its values).
CIFAR10_MEAN = (0.491250, 0.482090, 0.446521)
CIFAR10_STD = (0.245232, 0.242782, 0.260629)


def normalize(images):
    """images: float tensor [N, 3, 32, 32] in [0, 1]."""
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    return (images - mean) / std
