"""ViT family: Vision Transformers on MNIST-1D signals (tiny, cpu) and CIFAR-10 (full)."""

from workloads.vit.workload import ViTGLU, ViTWorkload

WORKLOADS = [ViTWorkload, ViTGLU]
