"""Data-parallel trials: `nproc_per_node=N` trains one model on N ranks, each on its slice of every
global batch, as AlgoPerf's PyTorch DDP runs do. The submission is unchanged: it sees one model (the
DDP-wrapped module) and the global batch size; DDP averages the gradients over the ranks, so N ranks
with global batch B take the steps one process with batch B takes.

- Ranks: `launch` starts N local processes with torchrun's environment (MASTER_ADDR, MASTER_PORT,
  RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE) and supervises them; under SLURM each task of the
  trial's job is one rank (harness/study/launchers.py exports submitit's environment), and so is each
  process of a `torchrun`. Every rank runs the same runner code; `World` is what it asks of the others.
- Process group: NCCL on CUDA (each rank on cuda:LOCAL_RANK), Gloo on CPU; collectives time out after
  COLLECTIVE_TIMEOUT, so a rank that hangs ends the trial as failed instead of blocking it forever.
- Batches: every rank builds the global batch of the step (the stream is deterministic in the seed and
  the step) and keeps its contiguous slice; the slices concatenated are exactly one process's batch.
  Building the whole batch costs each rank the indexing and augmentation of B rows, small beside the
  model's step, and needs no change to any workload's data code.
- BatchNorm: each rank normalises its slice with the slice's statistics; DDP broadcasts rank 0's
  running statistics before each training forward (torch's default, as AlgoPerf's ResNet). So a
  BatchNorm model's trajectory is not one process's (docs/scale_out.md has the measured difference);
  SyncBatchNorm would be, but torch has it on GPUs only.
- Clock: each reading is every rank's time since a common start, maxed over the ranks (AlgoPerf's
  `sync_ddp_time`): the clock is the slowest rank's, and every rank sees the same readings, so all of
  them evaluate, checkpoint and stop at the same steps.
- Evaluation: once, on rank 0, with the unwrapped model; the metrics are broadcast to the others.
- Files: rank 0 alone writes the trial's directory (result.json, logs, checkpoints); all ranks read a
  checkpoint on resume. Random generators draw the same streams on every rank (same seed, same calls),
  which is why rank 0's saved generator states resume every rank.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import multiprocessing
import os
import signal
import socket
import threading
import time
import traceback
from multiprocessing import connection
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from harness.core import results
from harness.core.results import TrialStatus

#: how long a collective waits for the other ranks; the longest legitimate wait is rank 0 alone
#: measuring this machine's reference step time or evaluating (minutes at most at the `full` preset)
COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=30)
#: once a rank has failed, how long the others get to end by themselves (they see the failure at their
#: next collective) before they are killed
GRACE_S = 60.0


@dataclasses.dataclass
class World:
    """The ranks of this process's trial; `World()` is a single process, where every method is the
    identity (or runs its function), so the runner's code is the same for one rank and N."""

    size: int = 1
    rank: int = 0
    local_rank: int = 0
    device: torch.device = dataclasses.field(default_factory=lambda: torch.device("cpu"))

    @classmethod
    def of(cls, nproc_per_node: int) -> World | None:
        """The trial's world from torchrun's environment; None when it wants ranks and none exist yet
        (the caller then `launch`es them)."""
        if nproc_per_node == 1:
            return cls()
        if "WORLD_SIZE" not in os.environ:
            return None
        size, rank = int(os.environ["WORLD_SIZE"]), int(os.environ["RANK"])
        if size != nproc_per_node:
            raise ValueError(f"the trial wants nproc_per_node={nproc_per_node} ranks, but this process is rank "
                             f"{rank} of WORLD_SIZE={size} (one node: the world is nproc_per_node ranks)")
        return cls(size, rank, int(os.environ.get("LOCAL_RANK", rank)))

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def writes(self) -> bool:
        """Whether this rank writes the trial's files (rank 0 alone)."""
        return self.rank == 0

    def rank_device(self, device: torch.device) -> torch.device:
        """Each rank its own GPU, cuda:LOCAL_RANK (torchrun's and AlgoPerf's convention); CPU ranks share the CPU."""
        if not self.distributed or device.type != "cuda":
            return device
        if self.local_rank >= torch.cuda.device_count():
            raise ValueError(f"rank {self.rank} wants cuda:{self.local_rank}, but {torch.cuda.device_count()} GPU(s) "
                             "are visible; nproc_per_node may be at most the GPUs of a node")
        return torch.device("cuda", self.local_rank)

    def join(self, device: torch.device) -> None:
        """Form the process group with the other ranks (it waits for all of them)."""
        self.device = device
        if not self.distributed:
            return
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", init_method="env://",
                                rank=self.rank, world_size=self.size, timeout=COLLECTIVE_TIMEOUT)

    def leave(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()

    def describe(self) -> dict[str, Any]:
        """What result.json and its provenance record about the ranks ({} for one process)."""
        if not self.distributed:
            return {}
        return {"world_size": self.size, "backend": dist.get_backend()}

    @contextlib.contextmanager
    def rank0_first(self) -> Iterator[None]:
        """Rank 0 runs the block before the others: it measures (and caches) what they then read."""
        if self.distributed and not self.writes:
            dist.barrier()
        yield
        if self.distributed and self.writes:
            dist.barrier()

    def wrap(self, model: Any) -> Any:
        """The model the submission trains: DDP averages the gradients over the ranks during backward."""
        if not self.distributed:
            return model
        return DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def shard(self, batches: Iterator[Mapping[str, torch.Tensor]]) -> Iterator[Mapping[str, torch.Tensor]]:
        """This rank's slice of every global batch: rows [rank * B/N, (rank + 1) * B/N)."""
        if not self.distributed:
            return batches
        return ({key: self._slice(key, value) for key, value in batch.items()} for batch in batches)

    def _slice(self, key: str, value: Any) -> torch.Tensor:
        if not isinstance(value, torch.Tensor) or value.dim() == 0:
            raise TypeError(f"batch[{key!r}] is a {type(value).__name__}, not a tensor of rows: "
                            "data-parallel trials split batches of tensors only")
        rows = value.shape[0]
        if rows % self.size:
            raise ValueError(f"a batch of {rows} rows does not split evenly over nproc_per_node={self.size} "
                             "ranks; choose a batch size divisible by it")
        per_rank = rows // self.size
        return value[self.rank * per_rank:(self.rank + 1) * per_rank]

    def slowest(self, time_fn: Callable[[], float]) -> Callable[[], float]:
        """`time_fn` as the slowest rank's clock: each reading is the rank's time since a common start,
        maxed over the ranks (a reading is a collective: every rank takes the same ones)."""
        if not self.distributed:
            return time_fn
        dist.barrier()  # the common start: origins differ by the barrier's skew only, even across hosts
        origin = time_fn()

        def now() -> float:
            reading = torch.tensor([time_fn() - origin], dtype=torch.float64, device=self.device)
            dist.all_reduce(reading, op=dist.ReduceOp.MAX)
            return float(reading.item())

        return now

    def from_rank0(self, compute: Callable[[], Any]) -> Any:
        """`compute()` on rank 0, its (picklable) value on every rank."""
        if not self.distributed:
            return compute()
        box = [compute() if self.writes else None]
        dist.broadcast_object_list(box, src=0, device=self.device)
        return box[0]

    def any(self, flag: bool) -> bool:
        """True on every rank when `flag` is True on one (so all of them take the same branch)."""
        if not self.distributed:
            return flag
        value = torch.tensor([int(flag)], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())


def unwrap(model: Any) -> Any:
    """The module inside DDP (rank 0 evaluates it alone, so no collective may run in its forward)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


# ---- starting the ranks of a local trial ---------------------------------------------------------------

@dataclasses.dataclass
class _Rank:
    rank: int
    process: multiprocessing.process.BaseProcess
    reports: connection.Connection
    report: dict[str, Any] | None = None  # its record, or how it failed; {} when it ended without a word

    @property
    def failed(self) -> bool:
        ended_badly = self.process.exitcode not in (None, 0)
        return ended_badly or (self.report or {}).get("status") == TrialStatus.FAILED


def rank_context() -> multiprocessing.context.BaseContext:
    """Rank processes come from a fork server that imported the runner once: each rank then starts in
    well under a second instead of importing torch, pandas, scipy and torch._dynamo (which DDP's
    constructor imports) again, seconds each, and, unlike a fork of the launcher, without its threads or
    CUDA state. The server lives as long as this process."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["harness.core.runner", "torch._dynamo"])
    return context


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch(spec, run: Callable[..., results.TrialRecord], results_dir: Path | str, options: Mapping[str, Any],
           failed: Callable[[str, dict[str, Any]], results.TrialRecord]) -> results.TrialRecord:
    """Run the trial `spec` as `spec.nproc_per_node` local processes, each `run(spec, results_dir, **options)`
    in torchrun's environment, and return rank 0's record (rank 0 writes it); `failed(error, rank_errors)`
    makes the record of a trial whose rank 0 ended without one.

    A rank that fails makes the others fail at their next collective; rank 0's failed record then also
    names the other ranks' errors. Rank 0 killed: a failed record is returned and none written, so the
    trial resumes from its last checkpoint when run again, as a killed single-process trial does. A
    Ctrl-C interrupts rank 0 (which stops as an interrupted single process does) and raises
    KeyboardInterrupt(rank 0's message)."""
    size = spec.nproc_per_node
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "WORLD_SIZE": str(size),
           "LOCAL_WORLD_SIZE": str(size)}
    context = rank_context()
    ranks = []
    for rank in range(size):
        # duplex: the rank's end also tells it when the launcher is gone (`_end_with_launcher`)
        receiver, sender = context.Pipe()
        # the other ranks log nowhere and draw no progress bar
        rank_options = dict(options) if rank == 0 else {**options, "logger": None, "progress": False}
        process = context.Process(target=_run_rank, name=f"timetrial-rank{rank}", args=(
            run, {**env, "RANK": str(rank), "LOCAL_RANK": str(rank)}, os.getcwd(), spec, str(results_dir),
            rank_options, sender))
        process.start()
        sender.close()  # the rank holds the sending end now: EOF says it is gone
        ranks.append(_Rank(rank, process, receiver))
    interrupted = False
    try:
        _supervise(ranks)
    except KeyboardInterrupt:
        interrupted = True
        if ranks[0].process.is_alive():
            os.kill(ranks[0].process.pid, INTERRUPT_SIGNAL)
        with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C stops waiting for what rank 0 says
            _supervise(ranks, deadline=time.monotonic() + GRACE_S)
    finally:
        for member in ranks:
            _stop(member.process)
    if interrupted or (ranks[0].report or {}).get("interrupted"):
        said = (ranks[0].report or {}).get("error", "").split(": ", 1)[-1]  # TrialInterrupted's message
        raise KeyboardInterrupt(said or f"{spec.workload}/{spec.submission_label()} interrupted; rerun the same "
                                "command to resume (from its last checkpoint, if it has one)")
    return _outcome(spec, ranks, Path(results_dir), failed)


#: what the launcher sends rank 0 on a Ctrl-C; the ranks ignore SIGINT itself, so the terminal's Ctrl-C
#: stops rank 0 alone: it ends as an interrupted single process (no record), and the others, which write
#: nothing, fail at their next collective. Were every rank interrupted at once, rank 0 could see a peer
#: gone first and record a failure (deleting its checkpoint) instead.
INTERRUPT_SIGNAL = signal.SIGUSR1


def _run_rank(run, env: Mapping[str, str], cwd: str, spec, results_dir: str, options: Mapping[str, Any],
              reports: connection.Connection) -> None:
    """One rank's process: the trial in the launcher's environment and folder (not the fork server's) plus
    torchrun's variables; its record goes back to the launcher."""
    threading.Thread(target=_end_with_launcher, args=(reports,), daemon=True).start()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(INTERRUPT_SIGNAL, signal.default_int_handler)
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    try:
        record = run(spec, results_dir, **options)
    except BaseException as err:  # noqa: BLE001  (an interrupt, or a failure outside the trial's own handling)
        reports.send({"status": TrialStatus.FAILED, "error": f"{type(err).__name__}: {err}",
                      "traceback": traceback.format_exc(), "interrupted": isinstance(err, KeyboardInterrupt)})
        raise SystemExit(1) from None
    reports.send(record.to_json())  # a plain mapping, as a failure's report is


def _end_with_launcher(reports: connection.Connection) -> None:
    """The launcher never writes to a rank, so the rank's end of their pipe turns readable (EOF) only when
    the launcher is gone: the rank then ends at once, so that a killed launcher leaves no rank that trains
    on and writes the trial beside a rerun's ranks."""
    reports.poll(None)
    os._exit(1)


def _supervise(ranks: list[_Rank], deadline: float | None = None) -> None:
    """Collect the ranks' reports until every rank has ended, or until `deadline`; once one has failed,
    the others get GRACE_S more (the caller stops what is left)."""
    live = list(ranks)
    while live:
        waits = [m.process.sentinel for m in live] + [m.reports for m in live if m.report is None]
        if not connection.wait(waits, None if deadline is None else max(0.0, deadline - time.monotonic())):
            return
        for member in list(live):
            ended = not member.process.is_alive()  # before reading: an ended rank's report is in the pipe
            if member.report is None and member.reports.poll():
                try:
                    member.report = member.reports.recv()
                except EOFError:  # it ended without a word (killed): its exit code says how
                    member.report = {}
            if ended:
                member.process.join()
                live.remove(member)
            if deadline is None and member.failed:
                deadline = time.monotonic() + GRACE_S


def _stop(process: multiprocessing.process.BaseProcess) -> None:
    if process.is_alive():
        process.terminate()
        process.join(5.0)
    if process.is_alive():
        process.kill()
    process.join()


def _outcome(spec, ranks: list[_Rank], results_dir: Path,
             failed: Callable[[str, dict[str, Any]], results.TrialRecord]) -> results.TrialRecord:
    """Rank 0's record; when it failed, with what every other failed rank said (often the cause: rank 0
    fails at its next collective once another rank has left)."""
    others = {}
    for member in ranks[1:]:
        if member.failed:
            report = member.report or {}
            others[str(member.rank)] = {
                "error": report.get("error") or f"the process ended with exit code {member.process.exitcode}",
                "traceback": report.get("traceback", "")}
    summary = "".join(f"; rank {rank}: {entry['error']}" for rank, entry in others.items())
    own = ranks[0].report or {}
    if "trial_key" not in own:  # rank 0 ended without its record: nothing was written
        how = own.get("error") or f"its process ended with exit code {ranks[0].process.exitcode}"
        return failed(f"rank 0 ended without a result ({how}){summary}", others)
    record = results.TrialRecord.from_json(own)
    if record.status == TrialStatus.FAILED and others:
        record.error, record.rank_errors = f"rank 0: {record.error}{summary}", others
        results.write_result(spec.trial_dir(results_dir), record)
    return record
