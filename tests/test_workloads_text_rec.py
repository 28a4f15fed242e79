"""GPT and DLRM workloads: models, presets, data formats and preparation (docs/workloads_text_rec.md)."""

import importlib.util
import json
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from harness.registry import make_workload, workload_class
from harness.runner import TrialSpec, run_trial
from harness.spec import DataMissingError, ForwardPassMode
from workloads.dlrm import data as criteo
from workloads.dlrm.model import DLRM
from workloads.gpt import data as tokens
from workloads.gpt.model import GPT

REPO = Path(__file__).resolve().parent.parent
WORKLOADS = ["gpt2", "gpt2_post_ln", "dlrm_small", "dlrm_small_embed_init"]


def documented_parameter_counts() -> dict[tuple[str, str], int]:
    """The parameter-count table of docs/workloads_text_rec.md: | workload | preset | count |."""
    rows = re.findall(r"^\| `(\w+)` \| (tiny|cpu|full) \| ([\d,]+) \|", (REPO / "docs/workloads_text_rec.md").read_text(),
                      flags=re.MULTILINE)
    return {(name, preset): int(count.replace(",", "")) for name, preset, count in rows}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """Each tiny workload with its offline data prepared (generated into the session's data dir,
    the folder conftest's `data_dir` names)."""
    data_dir = str(tmp_path_factory.getbasetemp() / "data")
    built = {}
    for name in WORKLOADS:
        workload = make_workload(name, "tiny", data_dir)
        workload.prepare_data()
        built[name] = workload
    return built


@pytest.mark.parametrize("name", WORKLOADS)
def test_tiny_model_matches_documented_parameter_count(prepared, name):
    model, _ = prepared[name].init_model_fn(0)
    assert sum(p.numel() for p in model.parameters()) == documented_parameter_counts()[(name, "tiny")]
    assert set(prepared[name].param_shapes) == {n for n, _ in model.named_parameters()}


@pytest.mark.parametrize("name", WORKLOADS)
def test_cpu_and_full_models_match_documented_parameter_counts(name):
    """Built on the meta device: no memory, so GPT-2 124M and the 4M-row DLRM table cost nothing."""
    counts = documented_parameter_counts()
    for preset in ("cpu", "full"):
        workload = make_workload(name, preset)
        with torch.device("meta"):
            if workload.family == "gpt":
                vocab = 84 if workload.options["dataset"] == "shakespeare_char" else 50257
                model = GPT(workload.model_config(vocab))
            else:
                model = DLRM(workload.model_config())
        assert sum(p.numel() for p in model.parameters()) == counts[(name, preset)], preset


def test_gpt2_full_is_gpt2_124m():
    config = make_workload("gpt2", "full").model_config(50257)
    assert (config.n_layer, config.n_head, config.n_embd, config.block_size, config.vocab_size) == (12, 12, 768, 1024, 50304)


@pytest.mark.parametrize("name", WORKLOADS)
def test_one_step_and_one_eval_through_the_runner(tmp_path, data_dir, name):
    spec = TrialSpec(workload=name, submission="adamw", preset="tiny", max_steps=1, tag="test")
    record = run_trial(spec, tmp_path, data_dir=data_dir, device="cpu")
    assert record["status"] in ("budget", "reached"), record.get("traceback")
    assert record["steps"] == 1 and record["evals"] == 1
    metrics = record["final_metrics"]
    assert np.isfinite(metrics["validation_loss"]) and np.isfinite(metrics["train_loss"])


@pytest.mark.parametrize("name", WORKLOADS)
def test_loss_decreases_on_the_offline_data(prepared, name):
    workload = prepared[name]
    model, state = workload.init_model_fn(0)
    before = workload.eval_model(model, state)["validation_loss"]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for batch, _ in zip(workload.train_batches(workload.size.batch_size, seed=0), range(15)):
        logits, state = workload.model_fn(model, batch, state, ForwardPassMode.TRAIN, None, True)
        out = workload.loss_fn(batch["targets"], logits)
        optimizer.zero_grad()
        (out["summed"] / out["n_valid_examples"]).backward()
        optimizer.step()
    assert workload.eval_model(model, state)["validation_loss"] < before - 0.01


@pytest.mark.parametrize("name", WORKLOADS)
def test_batches_depend_only_on_seed_and_step(prepared, name):
    workload = prepared[name]
    stream = workload.train_batches(8, seed=3)
    first = [next(stream) for _ in range(3)]
    resumed = next(workload.train_batches(8, seed=3, start_step=2))
    other_seed = next(workload.train_batches(8, seed=4, start_step=2))
    assert torch.equal(resumed["inputs"], first[2]["inputs"])
    assert not torch.equal(other_seed["inputs"], first[2]["inputs"])


def test_variants_change_only_their_property():
    base, post_ln = workload_class("gpt2"), workload_class("gpt2_post_ln")
    assert post_ln.variant_of == "gpt2" and issubclass(post_ln, base) and not post_ln.pre_ln
    dlrm, embed = workload_class("dlrm_small"), workload_class("dlrm_small_embed_init")
    assert embed.variant_of == "dlrm_small" and issubclass(embed, dlrm)
    tiny = embed(preset="tiny")
    model = DLRM(tiny.model_config())
    scale = 1.0 / np.sqrt(tiny.options["vocab_size"])
    assert 0.9 < model.embedding.weight.abs().max().item() <= 1.0  # U(-1, 1)
    assert DLRM(dlrm(preset="tiny").model_config()).embedding.weight.abs().max().item() <= scale


# ---- nanoGPT token files -------------------------------------------------------------------

def test_token_file_round_trip_and_range_check(tmp_path):
    ids = np.random.default_rng(0).integers(0, 2**16, 1000)
    tokens.write_tokens(tmp_path / "train.bin", ids)
    assert (tmp_path / "train.bin").stat().st_size == 2 * len(ids)  # flat uint16, no header
    np.testing.assert_array_equal(tokens.read_tokens(tmp_path / "train.bin"), ids)
    with pytest.raises(ValueError, match="uint16"):
        tokens.write_tokens(tmp_path / "bad.bin", [70000])


@pytest.mark.parametrize("preload_limit", [2**28, 10], ids=["preloaded", "memmap"])
def test_gpt_windows_read_a_generated_token_folder(tmp_path, monkeypatch, preload_limit):
    """A hand-made shakespeare_char folder (ids 0..999 repeating): targets are inputs shifted by one,
    whether the tokens are preloaded or gathered from the memmap."""
    monkeypatch.setattr("workloads.gpt.workload.PRELOAD_MAX_TOKENS", preload_limit)
    folder = tmp_path / "shakespeare_char"
    for split in tokens.SPLITS:
        tokens.write_tokens(folder / f"{split}.bin", np.arange(5000) % 1000)
    (folder / "meta.json").write_text(json.dumps({"vocab_size": 1000}))
    workload = make_workload("gpt2", "tiny", str(tmp_path))
    workload.prepare_data()
    assert workload.vocab_size == 1000
    batch = next(workload.train_batches(4, seed=0))
    assert batch["inputs"].shape == (4, workload.options["block_size"])
    assert torch.equal(batch["targets"], (batch["inputs"] + 1) % 1000)
    assert isinstance(workload.tokens["train"], np.memmap) == (preload_limit < 5000)


def test_shakespeare_split_holds_out_whole_plays(prepared):
    meta = json.loads((prepared["gpt2"].dataset_folder / "meta.json").read_text())
    assert meta["val_plays"] and not set(meta["val_plays"]) & set(meta["train_plays"])
    assert len(meta["itos"]) == meta["vocab_size"] == 84
    val = tokens.read_tokens(prepared["gpt2"].dataset_folder / "val.bin")
    text = "".join(meta["itos"][i] for i in val[:2000])
    assert "SHAKESPEARE" in text.upper()


def test_missing_token_files_name_the_prepare_command(tmp_path):
    with pytest.raises(DataMissingError, match="prepare_data.py fineweb"):
        make_workload("gpt2", "full", str(tmp_path)).prepare_data()
    assert not make_workload("gpt2", "full", str(tmp_path)).data_available()


# ---- Criteo TSV ------------------------------------------------------------------------------

def test_criteo_tsv_round_trip_with_missing_values(tmp_path):
    frame, _ = criteo.generate_synthetic(300, seed=5)
    criteo.write_tsv(tmp_path / "day_0", frame)
    lines = (tmp_path / "day_0").read_text().splitlines()
    assert len(lines) == 300 and all(len(line.split("\t")) == 40 for line in lines)
    assert any("\t\t" in line for line in lines)  # missing values are empty fields
    back = criteo.read_tsv(tmp_path / "day_0")
    pd.testing.assert_frame_equal(back[criteo.DENSE_COLUMNS], frame[criteo.DENSE_COLUMNS].astype(float))
    assert back[criteo.CATEGORICAL_COLUMNS].isna().equals(frame[criteo.CATEGORICAL_COLUMNS].isna())
    assert (back["label"] == frame["label"]).all()


def test_criteo_features_follow_the_algoperf_transform():
    line = "1\t" + "\t".join(["", "-1", "0", "3"] + ["7"] * 9) + "\t" + "\t".join(["", "ff"] + ["0000000a"] * 24)
    frame = pd.read_csv(pd.io.common.StringIO(line), sep="\t", header=None, names=criteo.COLUMNS,
                        dtype={c: str for c in criteo.CATEGORICAL_COLUMNS}, keep_default_na=False,
                        na_values={c: [""] for c in criteo.COLUMNS})
    arrays = criteo.features(frame)
    np.testing.assert_allclose(arrays["dense"][0, :4], [0.0, 0.0, 0.0, np.log(4.0)], rtol=1e-6)
    assert arrays["cat"][0, 0] == 0 and arrays["cat"][0, 1] == 255 and arrays["cat"][0, 2] == 10
    assert arrays["label"][0] == 1


def test_criteo_conversion_splits_one_file_by_rows(tmp_path):
    frame, _ = criteo.generate_synthetic(500, seed=1)
    criteo.write_tsv(tmp_path / "train.txt", frame)
    criteo.convert_tsv({"train": [(tmp_path / "train.txt", 0, 400)], "val": [(tmp_path / "train.txt", 400, None)]},
                       tmp_path / "out", "test", chunk_rows=128)
    arrays = criteo.load_arrays(tmp_path / "out", "criteo-kaggle")
    assert len(arrays["train"]["label"]) == 400 and len(arrays["val"]["label"]) == 100
    np.testing.assert_array_equal(arrays["val"]["label"], frame["label"].to_numpy()[400:])
    expected = criteo.features(frame.iloc[400:])
    np.testing.assert_array_equal(arrays["val"]["cat"], expected["cat"])
    np.testing.assert_allclose(arrays["val"]["dense"], expected["dense"])


def test_synthetic_generator_is_seeded_and_carries_signal():
    first, probability = criteo.generate_synthetic(4000, seed=0)
    again, _ = criteo.generate_synthetic(4000, seed=0)
    val, _ = criteo.generate_synthetic(4000, seed=0, stream=1)
    pd.testing.assert_frame_equal(first, again)
    assert not first["label"].equals(val["label"])
    assert first.drop(columns="label").isna().any().all()  # every feature column has missing values
    rate = first["label"].mean()
    assert 0.1 < rate < 0.5
    base_rate_loss = -(rate * np.log(rate) + (1 - rate) * np.log(1 - rate))
    assert criteo.bayes_log_loss(probability) < base_rate_loss - 0.05


def test_missing_criteo_arrays_name_the_prepare_command(tmp_path):
    with pytest.raises(DataMissingError, match="prepare_data.py criteo-1tb"):
        make_workload("dlrm_small", "full", str(tmp_path)).prepare_data()


# ---- scripts/prepare_data.py -------------------------------------------------------------------

@pytest.fixture(scope="module")
def prepare_script():
    spec = importlib.util.spec_from_file_location("prepare_data", REPO / "scripts" / "prepare_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prepare_data_lists_datasets_and_rejects_unknown_ones(prepare_script):
    help_text = prepare_script.parser().format_help()
    for name in ("cifar10", "openwebtext", "fineweb", "shakespeare", "criteo-kaggle", "criteo-1tb",
                 "criteo-synthetic", "libsvm-a9a", "libsvm-w8a", "libsvm-covtype"):
        assert name in help_text
    with pytest.raises(prepare_script.UnknownDatasetError, match=r"'imagenet'.*valid datasets: \['cifar10'"):
        prepare_script.main(["imagenet", "--data-dir", "x"])


def test_prepare_data_writes_the_synthetic_criteo_layout(prepare_script, tmp_path, capsys):
    assert prepare_script.main(["criteo-synthetic-tiny", "--data-dir", str(tmp_path)]) == 0
    assert "SYNTHETIC" in capsys.readouterr().out
    meta = json.loads((tmp_path / "criteo-synthetic-tiny" / "meta.json").read_text())
    assert meta["rows"] == {"train": 6000, "val": 2000} and "SYNTHETIC" in meta["description"]
    workload = make_workload("dlrm_small", "tiny", str(tmp_path))
    workload.prepare_data()  # reads what the script wrote
    assert workload.splits["train"]["inputs"].shape == (6000, 39)


# ---- end to end ------------------------------------------------------------------------------

#: AdamW at GPT-2 small's settings (nanoGPT; Sophia's baseline, configs/reproduce/sophia.yaml). It reaches
#: both the calibrated (2.669) and the code's (3.016) target within 100 steps; the calibration's single
#: AdamW point (lr 0.008) plateaus near 3 and needed the whole budget on an Intel Xeon VM.
ADAMW_GPT2_SETTINGS = {"learning_rate": 6.0e-4, "one_minus_beta1": 0.1, "beta2": 0.95, "weight_decay": 0.1}


def per_thread_cpu_time() -> float:
    """This process's CPU seconds per torch thread: on an idle machine about its wall clock, on a
    machine shared with other jobs still the work this trial did (the wall clock there counts the
    other jobs' time slices too, which made this test fail for reasons outside the code)."""
    return time.process_time() / torch.get_num_threads()


@pytest.mark.slow
def test_adamw_at_gpt2_settings_reaches_the_gpt2_cpu_target(tmp_path, data_dir):
    """The committed (or, on another hardware class, the code's) target and budget of gpt2 at cpu."""
    spec = TrialSpec(workload="gpt2", submission="adamw", preset="cpu", hyperparameters=ADAMW_GPT2_SETTINGS)
    record = run_trial(spec, tmp_path, data_dir=data_dir, device="cpu", clock_fn=per_thread_cpu_time)
    assert record["status"] == "reached", (record.get("error"), record.get("best_metric"), record["target_value"])
    assert record["time_to_target_s"] <= record["budget_s"]
