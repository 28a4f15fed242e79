"""`timetrial describe workload=W preset=P`: what a workload is at a preset, for a person."""

from __future__ import annotations

import torch

from harness.core import registry, targets
from harness.core.machine import machine_key
from harness.core.presets import preset_policy
from harness.core.provenance import hardware
from harness.core.runner import reference_step_time


def describe(name: str, preset: str, data_dir: str | None, device: torch.device) -> str:
    workload = registry.make_workload(name, preset, data_dir, str(device))
    workload.prepare_data()
    model, _ = workload.init_model_fn(0)
    n_params = sum(p.numel() for p in model.parameters())
    sizes = workload.split_sizes()
    direction = "lower" if workload.target_direction == "min" else "higher"
    threads = preset_policy(preset).torch_threads
    lines = [
        f"{name} ({preset}): {workload.description}",
        f"  model      {type(model).__name__}, {n_params:,} parameters",
        f"  data       {workload.data_description}",
        f"             train {sizes['train']:,} {workload.example_unit}, validation {sizes['validation']:,}",
        f"  metric     {workload.target_metric} ({direction} is better)",
        f"  target     {workload.target_value:.6g}  {target_origin(name, preset)}",
        f"  step_hint  {workload.step_hint:,} steps (batch size {workload.size.batch_size})",
        f"  threads    {threads if threads is not None else 'torch default'} torch thread(s) per trial, "
        f"set by the harness for preset {preset}",
        f"  precision  {workload.policy.describe()} (fixed by the workload for preset {preset} on {device.type})",
    ]
    if preset_policy(preset).measured_budget:
        measured = reference_step_time(workload, data_dir, device)
        clock = {True: ", measured on a SHARED clock", False: "", None: ", run too short to judge contention"}
        where = machine_key(hardware(device)["fingerprint"], measured.speed_calibration)
        lines.append(f"  machine    {measured.hardware['label']} [{where}]: reference step "
                     f"{measured.step_time_s:.4g} s ({measured.reference}, {measured.measured_at}"
                     f"{clock[measured.contended]}) -> budget {measured.budget_s(workload.step_hint):.1f} s")
    else:
        lines.append(f"  budget     {workload.max_allowed_runtime_sec:g} s, fixed by the preset")
    trivial = workload.trivial_scores()
    if trivial:
        lines.append("  trivial    " + "; ".join(f"{model_name} {score:.4g}" for model_name, score in trivial.items()))
    return "\n".join(lines)


def target_origin(name: str, preset: str) -> str:
    """How the target in force was set: the protocol's summary, or the code's provisional value."""
    found = targets.entry(name, preset)
    if found is None:
        return "(provisional, from the workload's code: not yet set by `timetrial calibrate`)"
    source = found.get("provenance", {})
    reruns = source.get("rerun_best_metrics", [])
    fractions = [f for f in source.get("rerun_fraction_of_step_hint", []) if f is not None]
    spread = f"reruns' best {min(reruns):.4g}..{max(reruns):.4g}" if reruns else "no reruns recorded"
    reach = (f"; reruns met it at {min(fractions):.0%}..{max(fractions):.0%} of step_hint" if fractions else "")
    return (f"(set by `timetrial calibrate`: {source.get('protocol', '?')}; {source.get('trials', '?')} trials, "
            f"{spread}{reach}; last trial {source.get('last_trial', '?')})")
