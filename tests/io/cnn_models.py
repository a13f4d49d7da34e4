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
class LambdaLayer(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def _pad_shortcut(planes: int):
    def pad(x):
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4), "constant", 0)
    return pad


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
                self.shortcut = LambdaLayer(_pad_shortcut(planes))
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
