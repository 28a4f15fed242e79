"""Each failure says what happened and what to do, in one line, and exits non-zero."""

import json

import pytest

from harness.commands.cli import main
from harness.core import results
from harness.study import status

INTERRUPTING = '''
import os
import torch

def create_optimizer(params, hyperparameters, workload):
    return torch.optim.SGD(params.parameters(), lr=0.1)

def schedule(step, step_hint, hyperparameters):
    if step == 7 and os.path.exists(os.environ["INTERRUPT_FLAG"]):
        os.remove(os.environ["INTERRUPT_FLAG"])
        raise KeyboardInterrupt  # what Ctrl-C raises in the main thread
    return 1.0
'''


def test_ctrl_c_says_where_it_stopped_and_the_same_command_resumes(tmp_path, data_dir, capsys, monkeypatch):
    folder = tmp_path / "interrupting"
    folder.mkdir()
    (folder / "submission.py").write_text(INTERRUPTING)
    (folder / "metadata.json").write_text(json.dumps({"method": "x", "paper": {"title": "t", "arxiv": None}}))
    flag = tmp_path / "interrupt-once"
    flag.write_text("")
    monkeypatch.setenv("INTERRUPT_FLAG", str(flag))
    argv = ["run", "workload=logreg_wine", f"submission={folder}", "preset=tiny", "eval_period_steps=5",
            "eval_period_s=1e9", "max_steps=20", f"results_dir={tmp_path / 'runs'}", f"data_dir={data_dir}",
            "progress=false"]
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert "interrupted at step 7; rerun the same command to resume (it resumes from the checkpoint at step 6)" in err
    table = status.trial_states(tmp_path / "runs")
    assert list(table["state"]) == ["interrupted"] and "checkpoint at step 6" in table["detail"].iloc[0]
    assert main(argv) == 0  # the flag is gone: it resumes and finishes
    assert list(status.trial_states(tmp_path / "runs")["state"]) == ["done"]
    record = results.read_result(next((tmp_path / "runs").rglob(results.RESULT_FILE)).parent)
    assert record.resumed_from_steps == [6] and record.steps == 20


@pytest.mark.parametrize("argv, message", [
    (["run", "results_dir=FILE"], "is a file, not a folder"),
    (["run", "data_dir=FILE"], "is not a readable folder"),
    (["run", "launcher=local"], "launcher=local does not apply"),
])
def test_bad_folders_and_options_are_one_line_errors(tmp_path, capsys, argv, message):
    afile = tmp_path / "a_file"
    afile.write_text("")
    assert main([arg.replace("FILE", str(afile)) for arg in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_leaderboard_of_an_empty_tree_writes_nothing_and_says_what_is_there(tmp_path, data_dir, capsys):
    assert main(["leaderboard", f"results_dir={tmp_path}"]) == 2
    assert "it has no trial results at all; nothing written" in capsys.readouterr().err
    assert main(["run", "workload=logreg_wine", "preset=tiny", "max_steps=3", f"results_dir={tmp_path}",
                 f"data_dir={data_dir}", "progress=false"]) == 0
    capsys.readouterr()
    assert main(["leaderboard", f"results_dir={tmp_path}", "preset=cpu"]) == 2
    assert "it has: preset tiny: rulesets run" in capsys.readouterr().err
    assert not list(tmp_path.glob("leaderboard.*"))


UNREACHABLE_SINFO = """#!/bin/sh
echo "sinfo: error: resolve_ctls_from_dns_srv: res_nsearch error: Unknown host" >&2
echo "sinfo: error: fetch_config: DNS SRV lookup failed" >&2
echo "sinfo: error: Could not establish a configuration source" >&2
exit 1
"""


@pytest.mark.parametrize("installed, message", [(False, "SLURM is not installed here"),
                                                (True, "SLURM cannot be reached (sinfo: error: Could not establish")])
def test_launcher_slurm_without_a_cluster_says_how_to_get_one(tmp_path, data_dir, capsys, monkeypatch, installed,
                                                              message):
    """Without sbatch/sinfo, and with clients whose controller cannot be found (what sbatch printed on this
    machine before `scripts/slurm_localhost.sh up`)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if installed:
        for name in ("sbatch", "sinfo"):
            (bin_dir / name).write_text(UNREACHABLE_SINFO)
            (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}")
    argv = ["tune", "workload=logreg_wine", "submission=adamw", "tuning=self", "studies=1", "preset=tiny",
            "launcher=slurm", f"results_dir={tmp_path / 'runs'}", f"data_dir={data_dir}", "progress=false"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "scripts/slurm_localhost.sh up" in err and "launcher=local" in err
    assert len(err.splitlines()) == 1


def test_new_submission_writes_a_folder_that_checks_and_passes_its_reference_test(tmp_path, data_dir, capsys):
    import subprocess
    import sys

    folder = tmp_path / "my_method"
    assert main(["new-submission", str(folder)]) == 0
    assert {p.name for p in folder.iterdir()} == {"submission.py", "tuning_search_space.json", "metadata.json",
                                                  "test_reference.py"}
    assert json.loads((folder / "metadata.json").read_text())["name"] == "my_method"
    assert main(["check-submission", str(folder), "workload=logreg_wine", f"data_dir={data_dir}"]) == 0
    assert "ok: my_method" in capsys.readouterr().out
    test = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder / "test_reference.py")],
                          capture_output=True, text=True, cwd=tmp_path)
    assert test.returncode == 0 and "1 passed" in test.stdout, test.stdout + test.stderr
    assert main(["new-submission", str(folder)]) == 2 and "exists already" in capsys.readouterr().err


def test_help_summaries_are_whole_sentences(capsys):
    assert main(["--help"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  ")]
    assert lines and all(line.rstrip().endswith((".", ")")) for line in lines), lines


def test_a_wrong_update_params_signature_names_the_expected_one(tmp_path, capsys):
    file = tmp_path / "wrong.py"
    file.write_text("def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):\n"
                    "    return {}\n\n"
                    "def update_params(workload, params, batch, optimizer_state):\n"
                    "    return optimizer_state, params, None\n")
    assert main(["check-submission", str(file)]) == 1
    out = capsys.readouterr().out
    assert "update_params(workload, params, batch, optimizer_state) cannot take the arguments" in out
    assert "update_params(workload, current_param_container, current_params_types" in out
    assert "docs/submission_api.md" in out
