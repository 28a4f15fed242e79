"""schedule_free_adamw against the `schedulefree` package (Defazio et al.'s own code)."""

import schedulefree
from oracle_testing import MLPProblem, assert_trajectories_agree, reference_trajectory, submission_trajectory


def test_schedule_free_adamw_matches_schedulefree_with_algoperf_r():
    """AdamWScheduleFree with r = 0.75 (the AlgoPerf v0.5 weighting) and the submission's warm-up,
    int(warmup_factor * step_hint * step_hint_factor) = 5 steps here; the package's optimizer is put
    in train mode as its documentation requires. Same update, different operation order: rounding."""
    hp = {"learning_rate": 0.01, "one_minus_beta1": 0.1, "beta2": 0.99, "epsilon": 1e-8, "weight_decay": 0.05,
          "warmup_factor": 0.2, "step_hint_factor": 0.5, "r": 0.75, "weight_lr_power": 2.0}
    problem = MLPProblem()
    ours = submission_trajectory("schedule_free_adamw", hp, problem)

    def make(model):
        optimizer = schedulefree.AdamWScheduleFree(model.parameters(), lr=0.01, betas=(0.9, 0.99), eps=1e-8,
                                                   weight_decay=0.05, warmup_steps=5, r=0.75, weight_lr_power=2.0)
        optimizer.train()
        return optimizer

    assert_trajectories_agree(ours, reference_trajectory(problem, make), atol=1e-12)
