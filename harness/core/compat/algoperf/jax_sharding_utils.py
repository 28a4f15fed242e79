"""`algoperf.jax_sharding_utils` on the one device a timetrial trial runs on.

AlgoPerf lays a one-axis mesh named 'batch' over `jax.devices()`: parameters and optimizer state are
replicated on it, batches split along their first dimension, and `jax.jit` with those in/out shardings
makes a data-parallel step. A timetrial trial is one process on one device (data parallelism is issue
#17): the default device, `jax.devices()[0]`, where the workloads' arrays live. On one device both of
AlgoPerf's shardings put the whole array on that device, and so do these; they are that device's
`SingleDeviceSharding` rather than a `NamedSharding` over a one-device mesh because jax records a named
sharding's mesh in the types of a jitted step's outputs: the second step's inputs (the first step's
outputs) would then differ in type from the first step's (the runner's arrays), and the step would
compile twice, both times on the clock (measured with jax 0.10, tests/test_algoperf_jax.py).
"""

import jax


def _trial_device_sharding() -> jax.sharding.SingleDeviceSharding:
    return jax.sharding.SingleDeviceSharding(jax.devices()[0])


def get_replicate_sharding() -> jax.sharding.Sharding:
    """Every device holds the whole array: here, the trial's one device."""
    return _trial_device_sharding()


def get_batch_dim_sharding() -> jax.sharding.Sharding:
    """The array's first dimension split over the devices: here, all of it on the trial's one device."""
    return _trial_device_sharding()


def shard_along_batch_dim(x):
    """Every array of the pytree `x` placed with `get_batch_dim_sharding()`."""
    return jax.device_put(x, get_batch_dim_sharding())


def replicate(x):
    """Every array of the pytree `x` placed with `get_replicate_sharding()`."""
    return jax.device_put(x, get_replicate_sharding())


def display_shard_info(x: jax.Array) -> None:
    """Print where each shard of `x` lives (a debugging aid AlgoPerf offers)."""
    for shard in x.addressable_shards:
        print(f"shard on {shard.device}: index {shard.index}, replica {shard.replica_id}")
