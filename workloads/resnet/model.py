"""CIFAR-style ResNet (He et al., 2016): a 3x3 stem without max-pooling, stages of basic blocks
(two 3x3 convolutions + BatchNorm) whose first block halves the resolution from stage two on,
global average pooling and a linear classifier. ResNet-18 = widths 64/128/256/512, 2 blocks each;
ResNet-8 = widths 16/32/64, 1 block each. A 1-D signal is a 1 x L image with 1 x k kernels
(`kernel=(1, k)`): every convolution then runs along the signal only."""

from __future__ import annotations

import dataclasses

import torch.nn as nn
import torch.nn.functional as F

ACTIVATIONS = {"relu": F.relu, "silu": F.silu, "gelu": F.gelu}


@dataclasses.dataclass(frozen=True)
class ResNetConfig:
    widths: tuple[int, ...] = (64, 128, 256, 512)
    blocks_per_stage: tuple[int, ...] = (2, 2, 2, 2)
    activation: str = "relu"
    kernel: tuple[int, int] = (3, 3)  # (height, width) of every convolution but the 1x1 shortcuts


class BasicBlock(nn.Module):
    def __init__(self, in_width: int, width: int, stride: int, activation: str, kernel: tuple[int, int]):
        super().__init__()
        padding = (kernel[0] // 2, kernel[1] // 2)  # "same" size for odd kernels
        self.conv1 = nn.Conv2d(in_width, width, kernel, stride=stride, padding=padding, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, kernel, padding=padding, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.act = ACTIVATIONS[activation]
        self.conv_shortcut = self.bn_shortcut = None
        if stride != 1 or in_width != width:  # projection shortcut (option B) where the shape changes
            self.conv_shortcut = nn.Conv2d(in_width, width, 1, stride=stride, bias=False)
            self.bn_shortcut = nn.BatchNorm2d(width)

    def forward(self, x):
        out = self.act(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.conv_shortcut is None else self.bn_shortcut(self.conv_shortcut(x))
        return self.act(out + shortcut)


class ResNet(nn.Module):
    def __init__(self, config: ResNetConfig, in_channels: int, n_classes: int):
        super().__init__()
        if config.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {config.activation!r}; valid: {sorted(ACTIVATIONS)}")
        if len(config.widths) != len(config.blocks_per_stage):
            raise ValueError(f"widths {config.widths} and blocks_per_stage {config.blocks_per_stage} differ in length")
        self.act = ACTIVATIONS[config.activation]
        padding = (config.kernel[0] // 2, config.kernel[1] // 2)
        self.conv1 = nn.Conv2d(in_channels, config.widths[0], config.kernel, padding=padding, bias=False)
        self.bn1 = nn.BatchNorm2d(config.widths[0])
        blocks, in_width = [], config.widths[0]
        for stage, (width, n_blocks) in enumerate(zip(config.widths, config.blocks_per_stage)):
            for i in range(n_blocks):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(BasicBlock(in_width, width, stride, config.activation, config.kernel))
                in_width = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(in_width, n_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):  # He initialisation, as in the paper and torchvision
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.act(self.bn1(self.conv1(x)))
        x = self.blocks(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)
