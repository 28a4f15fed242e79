import json

import pytest

from harness.core.search_space import SearchSpaceError, load_search_space, parse_search_space


def test_ranges_sample_inside_bounds_reproducibly():
    space = parse_search_space({
        "learning_rate": {"min": 1e-4, "max": 1e-1, "scaling": "log"},
        "one_minus_beta1": {"min": 0.01, "max": 0.5},
        "beta2": {"feasible_points": [0.99, 0.999]},
    })
    points = space.sample(16, seed=3)
    assert points == space.sample(16, seed=3)
    assert points != space.sample(16, seed=4)
    assert all(1e-4 <= p["learning_rate"] <= 1e-1 and 0.01 <= p["one_minus_beta1"] <= 0.5 for p in points)
    assert {p["beta2"] for p in points} == {0.99, 0.999}
    # log scaling spreads points over decades: some below 1e-3, some above 1e-2
    lrs = [p["learning_rate"] for p in points]
    assert min(lrs) < 1e-3 and max(lrs) > 1e-2


def test_center_is_geometric_middle_for_log_ranges():
    space = parse_search_space({"lr": {"min": 1e-4, "max": 1e-2, "scaling": "log"}, "b": {"feasible_points": [7, 8]}})
    center = space.center()
    assert center["lr"] == pytest.approx(1e-3)
    assert center["b"] == 7


def test_fixed_point_list():
    space = parse_search_space([{"lr": 0.1}, {"lr": 0.2}])
    assert space.center() == {"lr": 0.1}
    assert space.sample(2, seed=0) == [{"lr": 0.1}, {"lr": 0.2}]
    with pytest.raises(SearchSpaceError, match="only 2 points"):
        space.sample(3, seed=0)


@pytest.mark.parametrize("raw, message", [
    ({"lr": {"min": 1, "max": 2, "scaling": "cubic"}}, "key 'lr': unknown scaling 'cubic'"),
    ({"lr": {"min": 2, "max": 1}}, "key 'lr': min 2 > max 1"),
    ({"lr": {"min": 0, "max": 1, "scaling": "log"}}, "key 'lr': log scaling needs min > 0"),
    ({"lr": {"feasible_points": []}}, "key 'lr': feasible_points must be a non-empty list"),
    ({"lr": {"max": 1}}, "key 'lr': missing \\['min'\\]"),
    ([], "list of fixed points is empty"),
    ({"lr": 0.1}, "key 'lr': expected"),
])
def test_bad_spaces_name_the_key(raw, message):
    with pytest.raises(SearchSpaceError, match=message):
        parse_search_space(raw)


def test_load_reports_invalid_json(tmp_path):
    path = tmp_path / "tuning_search_space.json"
    path.write_text("{not json")
    with pytest.raises(SearchSpaceError, match="not valid JSON"):
        load_search_space(path)
    path.write_text(json.dumps({"lr": {"min": 1e-3, "max": 1e-2, "scaling": "log"}}))
    assert load_search_space(path).names == ["lr"]


def test_command_line_hyperparameters_are_checked_and_typed_at_the_door(tmp_path, capsys):
    """hp.learning_rate=1e-3 reaches YAML as the string '1e-3'; the search space makes it a float, and a
    misspelled name exits naming the valid ones."""
    from harness.commands.cli import main
    from harness.core.submission import SubmissionError, load_submission

    adamw = load_submission("adamw")
    checked = adamw.checked_hyperparameters({"learning_rate": "1e-3", "warmup_factor": "0.1"})
    assert checked == {"learning_rate": 1e-3, "warmup_factor": 0.1} and isinstance(checked["learning_rate"], float)
    sgd = load_submission("sgd_momentum")
    assert sgd.checked_hyperparameters({"nesterov": "true"}) == {"nesterov": True}
    with pytest.raises(SubmissionError, match=r"has no hyperparameter 'learnig_rate'; valid: \[.*'learning_rate'"):
        adamw.checked_hyperparameters({"learnig_rate": 0.1})
    with pytest.raises(SearchSpaceError, match="hyperparameter learning_rate='fast' is not a float"):
        adamw.checked_hyperparameters({"learning_rate": "fast"})
    code = main(["run", "workload=logreg_wine", "submission=adamw", "hp.learnig_rate=0.1", f"results_dir={tmp_path}"])
    assert code == 2 and "has no hyperparameter 'learnig_rate'" in capsys.readouterr().err
    assert not (tmp_path / "trials").exists()
