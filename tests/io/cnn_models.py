"""Convolutional networks written with plain torch modules, named as their families name them,
for the reader tests (torchvision is not installed here).

Each model's ``expected(model)`` gives what topo must read, computed from the module objects
with numpy (``weight.reshape(C_out, -1)``, the wiring written out by hand for the family), not
with topo's readers.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


# ------------------------------------------------------------------ torchvision-style ResNet
class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample=None,
                 groups: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False, groups=groups)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample=None,
                 groups: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False, groups=groups)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    """torchvision's ResNet layout: conv1/bn1/maxpool, layer1..layer4, avgpool, fc."""

    def __init__(self, block, layers, num_classes: int = 10, width: int = 64,
                 groups: int = 1, in_channels: int = 3) -> None:
        super().__init__()
        self.inplanes = width
        self.conv1 = nn.Conv2d(in_channels, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make(block, width, layers[0], 1, groups)
        self.layer2 = self._make(block, width * 2, layers[1], 2, groups)
        self.layer3 = self._make(block, width * 4, layers[2], 2, groups)
        self.layer4 = self._make(block, width * 8, layers[3], 2, groups)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width * 8 * block.expansion, num_classes)

    def _make(self, block, planes, blocks, stride, groups):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion))
        out = [block(self.inplanes, planes, stride, downsample, groups)]
        self.inplanes = planes * block.expansion
        out += [block(self.inplanes, planes, groups=groups) for _ in range(1, blocks)]
        return nn.Sequential(*out)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet18(width: int = 64, **kw) -> ResNet:
    return ResNet(BasicBlock, [2, 2, 2, 2], width=width, **kw)


def resnet_bottleneck(width: int = 8, **kw) -> ResNet:
    return ResNet(Bottleneck, [1, 2, 1, 1], width=width, **kw)


def resnet_wiring(model: ResNet) -> tuple[list[str], list[int], list[int]]:
    """Names, reads and writes of a torchvision-style ResNet, written out from its blocks."""
    names, reads, writes = ["conv1"], [0], [1]
    stream, nxt = 1, 2
    for s in range(1, 5):
        for j, block in enumerate(getattr(model, f"layer{s}")):
            convs = [n for n in ("conv1", "conv2", "conv3") if hasattr(block, n)]
            current = stream
            for n in convs[:-1]:
                names.append(f"layer{s}.{j}.{n}")
                reads.append(current)
                writes.append(nxt)
                current, nxt = nxt, nxt + 1
            names.append(f"layer{s}.{j}.{convs[-1]}")
            reads.append(current)
            if block.downsample is not None:
                writes.append(nxt)
                names.append(f"layer{s}.{j}.downsample.0")
                reads.append(stream)
                writes.append(nxt)
                stream, nxt = nxt, nxt + 1
            else:
                writes.append(stream)
    names.append("fc")
    reads.append(stream)
    writes.append(nxt)
    return names, reads, writes


# ------------------------------------------------------------------------ CIFAR ResNet-20
class PadShortcut(nn.Module):
    """Option A: subsample and zero-pad the channels (``planes // 4`` on each side)."""

    def __init__(self, planes: int):
        super().__init__()
        self.planes = planes

    def forward(self, x):
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.planes // 4, self.planes // 4),
                     "constant", 0)


class CifarBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int = 1, option: str = "A"):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            if option == "A":
                self.shortcut = PadShortcut(planes)
            else:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = out + self.shortcut(x)
        return F.relu(out)


class CifarResNet(nn.Module):
    """The common CIFAR ResNet-6n+2 (conv1, bn1, layer1..3, linear)."""

    def __init__(self, n: int = 3, option: str = "A", width: int = 16, num_classes: int = 10):
        super().__init__()
        self.in_planes = width
        self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.layer1 = self._make(width, n, 1, option)
        self.layer2 = self._make(2 * width, n, 2, option)
        self.layer3 = self._make(4 * width, n, 2, option)
        self.linear = nn.Linear(4 * width, num_classes)

    def _make(self, planes, n, stride, option):
        out = []
        for s in [stride] + [1] * (n - 1):
            out.append(CifarBlock(self.in_planes, planes, s, option))
            self.in_planes = planes
        return nn.Sequential(*out)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.avg_pool2d(out, out.size()[3])
        return self.linear(out.view(out.size(0), -1))


def cifar_wiring(model: CifarResNet) -> tuple[list[str], list[int], list[int]]:
    """Names, reads and writes of a CIFAR ResNet: option A widens into a new stream that
    only the block's conv2 writes; option B's shortcut conv writes it with conv2."""
    names, reads, writes = ["conv1"], [0], [1]
    stream, nxt = 1, 2
    for s in (1, 2, 3):
        for j, block in enumerate(getattr(model, f"layer{s}")):
            names += [f"layer{s}.{j}.conv1", f"layer{s}.{j}.conv2"]
            reads += [stream, nxt]
            writes.append(nxt)
            nxt += 1
            widen = block.conv1.in_channels != block.conv2.out_channels
            if not widen:
                writes.append(stream)
                continue
            writes.append(nxt)
            if isinstance(block.shortcut, nn.Sequential) and len(block.shortcut):
                names.append(f"layer{s}.{j}.shortcut.0")
                reads.append(stream)
                writes.append(nxt)
            stream, nxt = nxt, nxt + 1
    names.append("linear")
    reads.append(stream)
    writes.append(nxt)
    return names, reads, writes


class PreActBlock(nn.Module):
    """A pre-activation block: bn1 normalises the block's input, bn2 conv1's output."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False))

    def forward(self, x):
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if hasattr(self, "shortcut") else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + shortcut


class PreActResNet(nn.Module):
    def __init__(self, width: int = 8, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        self.layer1 = nn.Sequential(PreActBlock(width, width), PreActBlock(width, width))
        self.layer2 = nn.Sequential(PreActBlock(width, 2 * width, 2),
                                    PreActBlock(2 * width, 2 * width))
        self.linear = nn.Linear(2 * width, num_classes)

    def forward(self, x):
        out = self.layer2(self.layer1(self.conv1(x)))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


def preact_wiring() -> tuple[list[str], list[int], list[int]]:
    names = ["conv1", "layer1.0.conv1", "layer1.0.conv2", "layer1.1.conv1", "layer1.1.conv2",
             "layer2.0.conv1", "layer2.0.conv2", "layer2.0.shortcut.0", "layer2.1.conv1",
             "layer2.1.conv2", "linear"]
    reads = [0, 1, 2, 1, 3, 1, 4, 1, 5, 6, 5]
    writes = [1, 1, 1, 1, 1, 4, 5, 5, 6, 5, 7]
    writes[1], writes[3] = 2, 3  # the blocks' conv1 write their own sets
    return names, reads, writes


# --------------------------------------------------------------------------------- chains
class VGG(nn.Module):
    """torchvision's VGG layout (features.N, classifier.N), small widths."""

    def __init__(self, plan=(8, "M", 16, "M", 16, 16, "M"), hidden: int = 32,
                 batch_norm: bool = True, pool: int = 2, num_classes: int = 10):
        super().__init__()
        layers, c = [], 3
        for v in plan:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
                continue
            layers.append(nn.Conv2d(c, v, 3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(v))
            layers.append(nn.ReLU(inplace=True))
            c = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((pool, pool))
        self.classifier = nn.Sequential(
            nn.Linear(c * pool * pool, hidden), nn.ReLU(True), nn.Dropout(),
            nn.Linear(hidden, hidden), nn.ReLU(True), nn.Dropout(),
            nn.Linear(hidden, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class LeNet5(nn.Module):
    """LeNet-5 as the PyTorch tutorial names it (conv1, conv2, fc1, fc2, fc3)."""

    def __init__(self, in_channels: int = 1, side: int = 5):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * side * side, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class ConvN(nn.Module):
    """Conv-2/4/6 of the lottery-ticket papers, named convs.N / linear.N."""

    def __init__(self, n: int = 4, width: int = 8, side: int = 32, hidden: int = 16):
        super().__init__()
        self.side = side
        layers, c = [], 3
        for k in range(n // 2):
            out = width * 2 ** k
            layers += [nn.Conv2d(c, out, 3, padding=1), nn.ReLU(),
                       nn.Conv2d(out, out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            c = out
            side //= 2
        self.convs = nn.Sequential(*layers)
        self.linear = nn.Sequential(nn.Linear(c * side * side, hidden), nn.ReLU(),
                                    nn.Linear(hidden, hidden), nn.ReLU(),
                                    nn.Linear(hidden, 10))

    def forward(self, x):
        return self.linear(torch.flatten(self.convs(x), 1))


# ------------------------------------------------------------------------- helpers
def prune_by_magnitude(model: nn.Module, sparsity: float = 0.9) -> nn.Module:
    """Zero the smallest ``sparsity`` of each conv/linear weight (by |w|), in place."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                w = m.weight
                k = int(round(sparsity * w.numel()))
                if k:
                    cut = w.abs().flatten().kthvalue(k).values
                    w.mul_((w.abs() > cut).to(w.dtype))
    return model


def randomise_norms(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm distinct statistics (so that permutations show)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g))
                m.running_mean.copy_(torch.randn(m.num_features, generator=g))
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model


def kernels(model: nn.Module, names: list[str]) -> list[np.ndarray]:
    """The weights of the named modules as numpy arrays (PyTorch's layout)."""
    mods = dict(model.named_modules())
    return [mods[n].weight.detach().numpy().astype(np.float64) for n in names]


def expected_matrix(weight: np.ndarray, groups: int = 1) -> np.ndarray:
    """topo's layer matrix of a conv or linear weight, built with numpy only:
    ``(C_out, C_in * positions)``, column ``in_channel * positions + position``, zero outside
    the groups."""
    c_out, per_group = weight.shape[:2]
    positions = int(np.prod(weight.shape[2:])) if weight.ndim > 2 else 1
    flat = weight.reshape(c_out, per_group * positions)
    out = np.zeros((c_out, per_group * groups * positions))
    for o in range(c_out):
        g = o // (c_out // groups)
        out[o, g * per_group * positions:(g + 1) * per_group * positions] = flat[o]
    return out


def renumber(reads: list[int], writes: list[int]) -> tuple[list[int], list[int]]:
    """Unit sets numbered by first use (reads[0], writes[0], reads[1], ...)."""
    number: dict[int, int] = {}
    for value in (v for pair in zip(reads, writes) for v in pair):
        number.setdefault(value, len(number))
    return [number[v] for v in reads], [number[v] for v in writes]


def chain_wiring(names: list[str]) -> tuple[list[str], list[int], list[int]]:
    return names, list(range(len(names))), list(range(1, len(names) + 1))


def layer_names(model: nn.Module) -> list[str]:
    """Conv and Linear modules in definition order (the forward order of the chains here)."""
    return [n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def norm_of(model: nn.Module) -> dict[str, tuple[str, str]]:
    """Each BatchNorm module -> (layer, "output" or "input"): the layer whose output (in a
    pre-activation block: input) it normalises, from the naming conventions
    (``bn<k>``/``conv<k>``, ``downsample.1``/``downsample.0``, a Sequential's previous
    conv)."""
    out = {}
    previous = None
    preact = isinstance(model, PreActResNet)
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            previous = name
        elif isinstance(m, nn.BatchNorm2d):
            parent, _, leaf = name.rpartition(".")
            if leaf.startswith("bn"):
                out[name] = (f"{parent + '.' if parent else ''}conv{leaf[2:]}",
                             "input" if preact else "output")
            else:
                out[name] = (previous, "output")
    return out


def permute_channels(model: nn.Module, names: list[str], reads: list[int], writes: list[int],
                     perms: dict[int, np.ndarray]) -> nn.Module:
    """Relabel the channels of the unit sets in ``perms`` (set -> permutation), in place:
    every layer's output rows, every reader's input blocks (a flatten layer's blocks of
    H*W columns), biases and BatchNorm parameters and statistics. The function the model
    computes does not change."""
    mods = dict(model.named_modules())
    set_of = {"output": dict(zip(names, writes)), "input": dict(zip(names, reads))}
    with torch.no_grad():
        for name, r, w in zip(names, reads, writes):
            m = mods[name]
            weight = m.weight.detach().clone()
            if w in perms:
                weight = weight[torch.as_tensor(perms[w])]
                if m.bias is not None:
                    m.bias.copy_(m.bias[torch.as_tensor(perms[w])])
            if r in perms:
                p = torch.as_tensor(perms[r])
                if weight.ndim > 2:
                    weight = weight[:, p]
                else:
                    c = len(perms[r])
                    weight = weight.reshape(weight.shape[0], c, -1)[:, p].reshape(
                        weight.shape[0], -1)
            m.weight.copy_(weight)
        for bn, (layer, side) in norm_of(model).items():
            unit_set = set_of[side][layer]
            if unit_set in perms:
                p = torch.as_tensor(perms[unit_set])
                for t in (mods[bn].weight, mods[bn].bias, mods[bn].running_mean,
                          mods[bn].running_var):
                    t.copy_(t[p])
    return model


def option_a_perms(model: CifarResNet, names: list[str], writes: list[int],
                   rng: np.random.Generator) -> dict[int, np.ndarray]:
    """Random permutations of the hidden unit sets of a CIFAR ResNet that keep the function
    of its option A shortcuts: a widened stream must carry the old stream's channels, at
    their padded place, permuted as the old stream is."""
    mods = dict(model.named_modules())
    size = {w: mods[n].weight.shape[0] for n, w in zip(names, writes)}
    streams = [writes[0]] + [w for n, w in zip(names, writes) if n.endswith(".0.conv2")]
    streams = list(dict.fromkeys(streams))
    perms = {s: rng.permutation(n) for s, n in size.items() if s != writes[-1]}
    for old, new in zip(streams[:-1], streams[1:]):
        if old == new:
            continue
        n_old, n_new = size[old], size[new]
        offset = n_new // 4
        band = np.arange(offset, offset + n_old)
        rest = np.setdiff1d(np.arange(n_new), band)
        p = np.empty(n_new, dtype=np.int64)
        p[band] = band[perms[old]]
        p[rest] = rng.permutation(rest)
        perms[new] = p
    return perms
