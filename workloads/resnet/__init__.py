"""ResNet family: CIFAR-style ResNets on MNIST-1D signals (tiny, cpu) and CIFAR-10 (full)."""

from workloads.resnet.workload import ResNetSiLU, ResNetWorkload

WORKLOADS = [ResNetWorkload, ResNetSiLU]
