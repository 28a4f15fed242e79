"""`algoperf.pytorch_utils.pytorch_setup` for one process (timetrial does not run DDP)."""

import os

import torch

from harness.core.spec import TRIAL_DEVICE_ENV


def pytorch_setup():
    """(use_pytorch_ddp, rank, device, n_gpus), as AlgoPerf returns them; the device is the one the trial
    runs on (AlgoPerf's own says cuda:0 whenever a GPU exists)."""
    n_gpus = torch.cuda.device_count()
    device = torch.device(os.environ.get(TRIAL_DEVICE_ENV) or ("cuda:0" if n_gpus else "cpu"))
    return False, 0, device, n_gpus
