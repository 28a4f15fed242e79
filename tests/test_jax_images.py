"""ResNet and ViT in JAX (framework=jax) against their PyTorch twins, every variant, at the `tiny` preset
(MNIST-1D, 1 x 40 images): the converted initialisation (and BatchNorm state) is the PyTorch one, the
loss of one batch and the evaluation metrics agree to float32 rounding, BatchNorm's running statistics
move as torch's, a few AdamW steps (PyTorch `adamw` vs optax `adamw_jax`) stay together, ViT's dropout
uses the key in training only, and a JAX trial runs end to end on each family.

Tolerances: loss and eval metrics rtol 1e-5 (jax_parity.LOSS_RTOL; measured <= 2e-7 relative);
BatchNorm running statistics after train-mode forward passes atol 1e-6 (measured 1.2e-7); parameters
and running statistics after 5 AdamW steps at lr 1e-3 atol 5e-6 (measured <= 6.8e-7, on ViT's
attention biases, whose key part has a zero true gradient, as GPT's: test_jax_dlrm_gpt.py).
"""

import dataclasses

import numpy as np
import pytest
import torch

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

from harness.core import registry  # noqa: E402
from harness.core.spec import ForwardPassMode  # noqa: E402
from jax_parity import (assert_dropout_uses_rng_in_train_mode_only, assert_jax_trial_trains,  # noqa: E402
                        assert_same_arrays, assert_same_initialisation, assert_same_loss_and_eval,
                        assert_submissions_agree, forward, numpy_model_state)
from workloads.jax_common import torch_to_jax_params  # noqa: E402
from workloads.resnet.model import ResNetConfig  # noqa: E402
from workloads.vit.model import ViTConfig  # noqa: E402

WORKLOADS = ["resnet", "resnet_silu", "vit", "vit_glu"]
RESNETS = ["resnet", "resnet_silu"]
STATE_ATOL = 1e-6
#: miniatures of the `full` models (CIFAR-10's 3 x 32 x 32 images): 2-D kernels, padding and patches,
#: two blocks in a stage, mean pooling
MINIATURES = {"resnet": ResNetConfig(widths=(4, 8), blocks_per_stage=(2, 1)),
              "vit_glu": ViTConfig(patch_size=(4, 4), width=8, depth=1, n_heads=2, mlp_dim=16, pooling="mean")}
ADAMW_STEPS, ADAMW_LR, PARAM_ATOL = 5, 1e-3, 5e-6


def random_output_layer(torch_workload, model):
    """`model` with its output layer drawn at random, and the same parameters in JAX: ViT's head starts
    at zero, which makes every logit 0 whatever the layers below compute."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if torch_workload.is_output_params(name):
                p.copy_(torch.randn(p.shape, generator=generator))
    return model, torch_to_jax_params(model)


def test_the_image_families_list_jax():
    for name in WORKLOADS:
        cls = registry.workload_class(name)
        assert cls.frameworks == ("pytorch", "jax") and issubclass(cls.implementation("jax"), cls), name


@pytest.mark.parametrize("name", WORKLOADS)
def test_jax_starts_from_the_pytorch_initialisation(name, framework_pairs):
    torch_workload, jax_workload = framework_pairs(name)
    _, params, model_state = assert_same_initialisation(torch_workload, jax_workload, 3)
    if name in RESNETS:  # BatchNorm's fresh running statistics (the names are torch's buffers, checked above)
        assert model_state and all(np.all(np.asarray(value) == (1.0 if key.endswith("running_var") else 0.0))
                                   for key, value in model_state.items())
    else:
        assert model_state is None
    weight = "conv1.weight" if name in RESNETS else "pos_embed"
    other_seed, _ = jax_workload.init_model_fn(4)  # the seed reaches the converted initialisation
    assert not np.array_equal(np.asarray(other_seed[weight]), np.asarray(params[weight]))


@pytest.mark.parametrize("name", WORKLOADS)
def test_same_batch_same_loss_and_same_eval(name, framework_pairs):
    torch_workload, jax_workload = framework_pairs(name)
    model, params = random_output_layer(torch_workload, torch_workload.init_model_fn(0)[0])
    _, model_state = jax_workload.init_model_fn(0)
    if name in RESNETS:  # evaluate with running statistics other than the fresh ones (mean 0, variance 1)
        torch_batch, jax_batch = (next(workload.train_batches(workload.size.batch_size, seed=2))
                                  for workload in (torch_workload, jax_workload))
        forward(torch_workload, model, torch_batch, update_batch_norm=True)
        _, model_state = forward(jax_workload, params, jax_batch, model_state=model_state, update_batch_norm=True)
        assert_same_arrays(numpy_model_state(params, model_state), numpy_model_state(model, None), atol=STATE_ATOL)
    assert_same_loss_and_eval(torch_workload, jax_workload, model, params, model_state)


# resnet_silu's BatchNorm is the same code: its running statistics are compared in the two tests around this one
def test_batch_norm_state_moves_as_torch_in_training_only(framework_pairs):
    torch_workload, jax_workload = framework_pairs("resnet")
    model, params, fresh = assert_same_initialisation(torch_workload, jax_workload, 0)
    batches = [next(workload.train_batches(workload.size.batch_size, seed=0, start_step=3))
               for workload in (torch_workload, jax_workload)]

    def both(mode, model_state, update_batch_norm):
        """The JAX logits and running statistics of one forward pass, checked against PyTorch's."""
        torch_logits, _ = forward(torch_workload, model, batches[0], mode, update_batch_norm=update_batch_norm)
        jax_logits, new_state = forward(jax_workload, params, batches[1], mode, model_state=model_state,
                                        update_batch_norm=update_batch_norm)
        np.testing.assert_allclose(np.asarray(jax_logits), torch_logits.numpy(), rtol=1e-5, atol=1e-5)
        assert_same_arrays(numpy_model_state(params, new_state), numpy_model_state(model, None), atol=STATE_ATOL)
        return np.asarray(jax_logits), new_state

    # training without update_batch_norm: batch statistics normalise, the running ones stay put
    batch_statistics, state = both(ForwardPassMode.TRAIN, fresh, False)
    assert_same_arrays(numpy_model_state(params, state), numpy_model_state(params, fresh))
    # with it, twice: torch's momentum and unbiased running variance, and the same logits
    for _ in range(2):
        _, state = both(ForwardPassMode.TRAIN, state, True)
    assert not np.allclose(np.asarray(state["bn1.running_var"]), 1.0)
    # evaluation normalises by the running statistics and never updates them, whatever update_batch_norm says
    running_statistics, eval_state = both(ForwardPassMode.EVAL, state, True)
    assert_same_arrays(numpy_model_state(params, eval_state), numpy_model_state(params, state))
    assert not np.allclose(running_statistics, batch_statistics)
    with pytest.raises(ValueError, match="model_state is None"):
        jax_workload.model_fn(params, batches[1], None, ForwardPassMode.EVAL, None, False)


@pytest.mark.parametrize("name", MINIATURES)
def test_two_dimensional_images_as_at_full(name):
    """What `full` adds to `tiny`'s 1 x 40 signals, on random 3 x 8 x 8 images (CIFAR-10 is not needed):
    the same logits in training (batch statistics) and evaluation (the updated running ones)."""
    torch_workload, jax_workload = (registry.make_workload(name, "tiny", framework=framework)
                                    for framework in ("pytorch", "jax"))
    for workload in (torch_workload, jax_workload):  # what init_model_fn reads of the data
        workload.size = dataclasses.replace(workload.size, options={"model": MINIATURES[name]})
        workload.train_images, workload.n_classes = torch.zeros((1, 3, 8, 8)), 10
    model, params = random_output_layer(torch_workload, torch_workload.init_model_fn(0)[0])
    _, model_state = jax_workload.init_model_fn(0)
    images = torch.randn((4, 3, 8, 8), generator=torch.Generator().manual_seed(0))
    for mode in (ForwardPassMode.TRAIN, ForwardPassMode.EVAL):
        torch_logits, _ = forward(torch_workload, model, {"inputs": images}, mode, update_batch_norm=True)
        jax_logits, model_state = forward(jax_workload, params, {"inputs": jnp.asarray(images.numpy())}, mode,
                                          model_state=model_state, update_batch_norm=True)
        np.testing.assert_allclose(np.asarray(jax_logits), torch_logits.numpy(), rtol=1e-5, atol=1e-5,
                                   err_msg=str(mode))
        assert_same_arrays(numpy_model_state(params, model_state), numpy_model_state(model, None), atol=STATE_ATOL)


def test_vit_dropout_uses_rng_in_train_mode_only(framework_pairs):
    torch_workload, jax_workload = framework_pairs("vit")
    _, params = random_output_layer(torch_workload, torch_workload.init_model_fn(0)[0])
    assert_dropout_uses_rng_in_train_mode_only(jax_workload, params)


@pytest.mark.parametrize("name", WORKLOADS)
def test_adamw_steps_agree_across_frameworks(name, framework_pairs):
    assert_submissions_agree(*framework_pairs(name), "adamw", "adamw_jax", ADAMW_STEPS, ADAMW_LR, PARAM_ATOL)


@pytest.mark.parametrize("name, submission", [("resnet", "adamw_jax"), ("vit", "nadamw_jax")])
def test_jax_trial_runs_on_the_family(name, submission, tmp_path, data_dir):
    assert_jax_trial_trains(name, submission, tmp_path, data_dir)
