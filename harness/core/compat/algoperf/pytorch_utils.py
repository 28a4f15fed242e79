"""`algoperf.pytorch_utils.pytorch_setup` for a timetrial trial: one process, or one rank of a
data-parallel trial (nproc_per_node > 1, harness/core/distributed.py)."""

import os

import torch
import torch.distributed as dist

from harness.core.spec import TRIAL_DEVICE_ENV


def pytorch_setup():
    """(use_pytorch_ddp, rank, device, n_gpus), as AlgoPerf returns them: DDP when the trial's process
    group is formed, the rank the local one (AlgoPerf's LOCAL_RANK); the device is the one the trial
    runs on (AlgoPerf's own says cuda:0 whenever a GPU exists)."""
    n_gpus = torch.cuda.device_count()
    device = torch.device(os.environ.get(TRIAL_DEVICE_ENV) or ("cuda:0" if n_gpus else "cpu"))
    use_ddp = dist.is_available() and dist.is_initialized()
    return use_ddp, int(os.environ.get("LOCAL_RANK", 0)) if use_ddp else 0, device, n_gpus
