"""GPT and DLRM workloads: models, presets, data formats and preparation (docs/workloads_text_rec.md)."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from harness.core.registry import make_workload, workload_class
from harness.core.runner import TrialSpec, run_trial
from harness.core.spec import DataMissingError, ForwardPassMode
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
    spec = TrialSpec(workload=name, submission="adamw", preset="tiny", max_steps=1, ruleset="test")
    record = run_trial(spec, tmp_path, data_dir=data_dir, device="cpu")
    assert record.status in ("budget", "reached"), record.traceback
    assert record.steps == 1 and record.evals == 1
    metrics = record.final_metrics
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


def generated_token_workload(data_dir):
    """gpt2 `tiny` on a hand-made shakespeare_char folder: ids 0..999 repeating in both splits."""
    folder = data_dir / "shakespeare_char"
    for split in tokens.SPLITS:
        tokens.write_tokens(folder / f"{split}.bin", np.arange(5000) % 1000)
    (folder / "meta.json").write_text(json.dumps({"vocab_size": 1000}))
    workload = make_workload("gpt2", "tiny", str(data_dir))
    workload.prepare_data()
    return workload


@pytest.mark.parametrize("preload_limit", [2**28, 10], ids=["preloaded", "memmap"])
def test_gpt_windows_read_a_generated_token_folder(tmp_path, monkeypatch, preload_limit):
    """A hand-made shakespeare_char folder (ids 0..999 repeating): targets are inputs shifted by one,
    whether the tokens are preloaded or gathered from the memmap."""
    monkeypatch.setattr("workloads.gpt.workload.PRELOAD_MAX_TOKENS", preload_limit)
    workload = generated_token_workload(tmp_path)
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


@pytest.mark.parametrize("name, module, preparer", [("dlrm_small", criteo, "prepare_synthetic"),
                                                   ("gpt2", tokens, "prepare_shakespeare_char")])
def test_concurrent_first_trials_prepare_the_data_once(tmp_path, monkeypatch, name, module, preparer):
    """Trials that start together on a fresh data folder (a sweep's first jobs) take turns: one generates
    and the others find the data ready. Before the lock, two dlrm_small calibration trials raced on the
    same temp files and one failed with FileNotFoundError."""
    import multiprocessing

    calls = tmp_path / "calls.log"
    original = getattr(module, preparer)

    def counted(*args, **kwargs):
        with open(calls, "a") as handle:
            handle.write("call\n")
        return original(*args, **kwargs)

    monkeypatch.setattr(module, preparer, counted)
    context = multiprocessing.get_context("fork")  # the children inherit the counting wrapper
    barrier = context.Barrier(3)

    def first_trial() -> None:
        barrier.wait()
        workload = make_workload(name, "tiny", str(tmp_path / "data"))
        workload.prepare_data()

    children = [context.Process(target=first_trial) for _ in range(3)]
    for child in children:
        child.start()
    for child in children:
        child.join(120)
    assert [child.exitcode for child in children] == [0, 0, 0]
    assert calls.read_text() == "call\n"


def test_missing_token_files_name_the_prepare_command(tmp_path):
    with pytest.raises(DataMissingError, match="prepare_data.py fineweb"):
        make_workload("gpt2", "full", str(tmp_path)).prepare_data()
    assert not make_workload("gpt2", "full", str(tmp_path)).data_available()


# ---- Criteo TSV ------------------------------------------------------------------------------

def write_tsv(path: Path, frame: pd.DataFrame) -> None:
    """Write a frame in the Criteo columns as Criteo TSV: missing values become empty fields."""
    out = frame[criteo.COLUMNS].copy()
    for column in criteo.DENSE_COLUMNS:
        out[column] = out[column].astype("Int64")  # integers, <NA> for missing
    out.to_csv(path, sep="\t", header=False, index=False, na_rep="")


def test_criteo_tsv_round_trip_with_missing_values(tmp_path):
    frame, _ = criteo.generate_synthetic(300, seed=5)
    write_tsv(tmp_path / "day_0", frame)
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
    """Also what lets prepare_synthetic skip the TSV files: a generated frame's features equal those of
    its TSV, converted."""
    frame, _ = criteo.generate_synthetic(500, seed=1)
    write_tsv(tmp_path / "train.txt", frame)
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
def prepare_script(load_script):
    return load_script("prepare_data")


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


# ---- the cpu presets: split sizes and trivial models ----------------------------------------

@pytest.fixture(scope="module")
def gpt2_cpu(tmp_path_factory):
    """gpt2 at cpu on the offline Shakespeare characters (prepared in a few seconds)."""
    workload = make_workload("gpt2", "cpu", str(tmp_path_factory.getbasetemp() / "data"))
    workload.prepare_data()
    return workload


def test_gpt2_cpu_validation_counts_at_least_1000_predicted_characters(gpt2_cpu):
    sizes = gpt2_cpu.split_sizes()
    assert gpt2_cpu.example_unit == "predicted characters"
    assert sizes["validation"] == gpt2_cpu.options["eval_windows"] * gpt2_cpu.options["block_size"] >= 1000
    assert sizes["train"] == len(gpt2_cpu.tokens["train"]) - 1 > 4_000_000
    # the evaluation windows do not overlap (each character is counted once)
    starts = gpt2_cpu.eval_starts["val"]
    assert (starts.diff() >= gpt2_cpu.options["block_size"]).all()


def test_gpt2_cpu_target_is_far_below_the_bigram_model(gpt2_cpu):
    scores = gpt2_cpu.trivial_scores()
    unigram, bigram = scores["unigram (train counts, add-one)"], scores["bigram (train counts, add-one)"]
    assert 3.2 < unigram < 3.4 and 2.4 < bigram < 2.6 and bigram < unigram
    assert make_workload("gpt2", "cpu").target_value < bigram - 0.4
    assert make_workload("gpt2_post_ln", "cpu").target_value < bigram - 0.2
    assert gpt2_cpu.trivial_scores() == scores  # cached in the data folder, the same on a second call


def test_gpt2_trivial_scores_match_a_direct_count(prepared):
    """The bigram score of the tiny windows recomputed naively from the token files."""
    workload = prepared["gpt2"]
    train = tokens.read_tokens(workload.dataset_folder / "train.bin").astype(np.int64)
    val = tokens.read_tokens(workload.dataset_folder / "val.bin").astype(np.int64)
    vocab, block = workload.vocab_size, workload.options["block_size"]
    counts = np.zeros((vocab, vocab))
    np.add.at(counts, (train[:-1], train[1:]), 1.0)
    nll = []
    for start in workload.eval_starts["val"].tolist():
        for t in range(start, start + block):
            nll.append(-np.log((counts[val[t], val[t + 1]] + 1) / (counts[val[t]].sum() + vocab)))
    assert workload.trivial_scores()["bigram (train counts, add-one)"] == pytest.approx(np.mean(nll), rel=1e-9)
    assert workload.split_sizes()["validation"] == len(nll)


def test_gpt2_full_trivial_scores_are_skipped_for_memmapped_splits(tmp_path, monkeypatch):
    monkeypatch.setattr("workloads.gpt.workload.PRELOAD_MAX_TOKENS", 10)
    assert generated_token_workload(tmp_path).trivial_scores() == {}


@pytest.mark.parametrize("name", ["dlrm_small", "dlrm_small_embed_init"])
def test_dlrm_cpu_validation_has_at_least_1000_rows(name):
    workload = make_workload(name, "cpu")
    spec = criteo.SYNTHETIC[workload.options["dataset"]]
    assert workload.example_unit == "examples"
    assert 1000 <= workload.options["eval_rows"] <= spec.val_rows
    # about one pass over the training rows within step_hint: no overfitting plateau
    assert workload.step_hint * workload.size.batch_size <= 1.1 * spec.train_rows


def test_dlrm_tiny_trivial_scores_are_ordered(prepared):
    workload = prepared["dlrm_small"]
    assert workload.split_sizes() == {"train": 6000, "validation": 2000}
    scores = workload.trivial_scores()
    assert (scores["planted model (Bayes)"] < scores["logistic regression, no interactions"]
            < scores["constant click rate"])


def test_synthetic_data_of_an_older_generator_is_regenerated(tmp_path):
    folder = tmp_path / "criteo-synthetic-tiny"
    criteo.prepare_synthetic("criteo-synthetic-tiny", folder)
    assert criteo.synthetic_is_current("criteo-synthetic-tiny", folder)
    meta = json.loads((folder / "meta.json").read_text())
    meta["planted_model"]["max_cardinality"] = 7
    (folder / "meta.json").write_text(json.dumps(meta))
    assert not criteo.synthetic_is_current("criteo-synthetic-tiny", folder)


@pytest.mark.slow
def test_dlrm_cpu_target_lies_between_the_planted_and_the_no_interaction_model(tmp_path_factory):
    """Generates the 2M-row cpu log (about 1.5 minutes) and fits the reference models."""
    workload = make_workload("dlrm_small", "cpu", str(tmp_path_factory.getbasetemp() / "data"))
    workload.prepare_data()
    assert workload.split_sizes() == {"train": 2_000_000, "validation": 20_000}
    scores = workload.trivial_scores()
    assert scores["planted model (Bayes)"] < workload.target_value < scores["logistic regression, no interactions"]
    assert scores["logistic regression, no interactions"] < scores["constant click rate"]

