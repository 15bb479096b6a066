"""Start a run's ranks as child processes through torchrun, and turn their output into one event stream.

`run_on_ranks(run)` is what `TrainingRun.run()` does when `train.gpus` > 1: the checks and the run
folder happen here, once; the plan (core.training.multi_gpu) is logged; then
`python -m torch.distributed.run --standalone --nproc-per-node N -m tunesmith.core.training.rank_main`
starts the ranks in a process group of their own.  Rank 0 prints its events as JSON lines on stdout
(core.training.rank_main); a reader thread passes them to the run's listener in order, so the app's
worker and the CLI see the same events as from one GPU.  Other output is kept for the log and for a
failure's details.

Stop (`run.cancel()`, or Ctrl-C in the CLI) writes the stop file every rank checks at its step end:
all ranks save one checkpoint at the same step and exit.  Only if they have not exited within
`STOP_GRACE_S` is the whole process group terminated.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

from tunesmith.core.events import Event, Failed, Finished, LogLine, event_from_dict

if TYPE_CHECKING:
    from tunesmith.core.training.engine import TrainingRun
    from tunesmith.core.training.multi_gpu import ParallelPlan

log = logging.getLogger(__name__)

SPEC_FILE = "ranks.json"
STOP_GRACE_S = 600.0  # a step of a large model, then its checkpoint
_TAIL_LINES = 60


def run_on_ranks(run: TrainingRun) -> Finished | Failed:
    """Run `run` on `run.config.train.gpus` ranks; returns the final event (already passed on)."""
    from tunesmith.core.hardware import detect_hardware
    from tunesmith.core.training.multi_gpu import plan_parallel
    from tunesmith.core.training.rank_main import STOP_FILE

    run.check()
    plan = plan_parallel(run.config, detect_hardware())
    run.setup_run_dir()
    for note in run.checked.notes if run.checked else ():
        run._emit(note)
    run._emit(LogLine("info", plan.reason))
    run_dir = Path(str(run.run_dir))
    (run_dir / STOP_FILE).unlink(missing_ok=True)  # a previous Stop of this folder
    spec = {
        "config": run.config.to_dict(),
        "run_dir": str(run_dir),
        "resume_from": str(run._checkpoint) if run._checkpoint else None,
        "strategy": plan.strategy,
    }
    spec_path = run_dir / SPEC_FILE
    tmp = spec_path.with_name(SPEC_FILE + ".tmp")
    tmp.write_text(json.dumps(spec, indent=1), encoding="utf-8")
    tmp.replace(spec_path)
    ranks = Ranks(rank_command(plan, spec_path), rank_environment(plan))
    return ranks.follow(run, run_dir / STOP_FILE)


def rank_command(plan: ParallelPlan, spec_path: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",  # one machine: a local rendezvous on a free port
        f"--nproc-per-node={plan.processes}",
        "--no-python",  # the command below is the whole rank command line
        sys.executable,
        "-c",
        _RANK_ENTRY,
        str(spec_path),
    ]


# Not `-m`: that puts the working folder first on sys.path, where a source checkout's `kernels/` would
# answer to the bare name `kernels` that transformers probes for (tests/conftest.py says the same).
_RANK_ENTRY = (
    "import os, sys; sys.path[:] = [p for p in sys.path if p not in ('', '.', os.getcwd())]; "
    "from tunesmith.core.training.rank_main import main; sys.exit(main())"
)


def rank_environment(plan: ParallelPlan) -> dict[str, str]:
    """This process's environment, plus what every rank must share."""
    from tunesmith.core.training.multi_gpu import STRATEGY_ENV
    from tunesmith.core.training.rank_main import PARENT_ENV

    env = dict(os.environ)
    env[STRATEGY_ENV] = plan.strategy
    env[PARENT_ENV] = str(os.getpid())  # the ranks stop (with a checkpoint) if this process dies
    env["PYTHONUNBUFFERED"] = "1"
    if plan.backend == "gloo":
        # torchrun would give each rank one thread; share the cores instead
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // plan.processes)))
    elif "TUNESMITH_HOST_BUDGET_GIB" not in env:
        # Each rank would count all of the machine's free memory as its own pinned-memory budget.
        from tunesmith.kernels.memory.host_budget import GIB, default_host_budget

        env["TUNESMITH_HOST_BUDGET_GIB"] = f"{default_host_budget() / plan.processes / GIB:.2f}"
    return env


def _tell(run: TrainingRun, event: Event) -> None:
    """Pass a rank's event to the run's listener; rank 0 has written it to metrics.jsonl already."""
    try:
        run._on_event(event)
    except Exception:  # a broken listener must not stop the ranks
        log.exception("Event listener failed on %s", event.kind)


class Ranks:
    """The torchrun process (and, through it, the ranks) of one run, and its output."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.command, self.env = command, env
        self.events: queue.Queue[Event | None] = queue.Queue()
        self.tail: deque[str] = deque(maxlen=_TAIL_LINES)
        self.proc: subprocess.Popen[str] | None = None

    def follow(self, run: TrainingRun, stop_file: Path) -> Finished | Failed:
        log.info("Starting ranks: %s", " ".join(self.command))
        self.proc = subprocess.Popen(
            self.command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.env,
            start_new_session=True,  # the ranks are stopped as a group, and a terminal's Ctrl-C is ours
        )
        reader = threading.Thread(target=self._read, name="tunesmith-ranks", daemon=True)
        reader.start()
        final: Finished | Failed | None = None
        stop_since: float | None = None
        while True:
            try:
                event = self.events.get(timeout=0.2)
                if event is None:
                    break
                if final is None or not isinstance(event, Failed | Finished):
                    _tell(run, event)
                if isinstance(event, Finished | Failed) and final is None:
                    final = event
            except queue.Empty:
                pass
            except KeyboardInterrupt:
                if stop_since is not None:
                    self.terminate()  # a second Ctrl-C: no checkpoint wait
                run.cancel()
            if run.cancelled and stop_since is None:
                stop_since = time.monotonic()
                stop_file.touch()
                run._emit(LogLine("info", "Stopping every rank after this step (a checkpoint is kept)."))
            if stop_since is not None and time.monotonic() - stop_since > STOP_GRACE_S:
                self.terminate()
        code = self.proc.wait()
        reader.join(timeout=5)
        stop_file.unlink(missing_ok=True)
        if final is None or (code != 0 and isinstance(final, Finished)):
            final = self._crashed(code, run)
        return final

    def _read(self) -> None:
        from tunesmith.core.training.rank_main import EVENT_PREFIX

        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            if line.startswith(EVENT_PREFIX):
                try:
                    self.events.put(event_from_dict(json.loads(line[len(EVENT_PREFIX) :])))
                    continue
                except (ValueError, KeyError, TypeError):
                    pass  # not one of ours after all: keep it as output
            self.tail.append(line)
            log.debug("rank output: %s", line)
        self.events.put(None)

    def terminate(self) -> None:
        """Stop torchrun and every rank at once (they share a process group)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            if hasattr(os, "killpg"):
                os.killpg(self.proc.pid, signal.SIGTERM)
            else:
                self.proc.terminate()
        except ProcessLookupError:
            pass

    def _crashed(self, code: int, run: TrainingRun) -> Failed:
        """No rank said why: the exit code and the end of their output are what is known."""
        from tunesmith.core.training.engine import CHECKPOINTS, _latest_checkpoint

        stopped = " after Stop" if run.cancelled else ""
        event = Failed(
            message=f"The training processes ended{stopped} with exit code {code} and no result.",
            hint="The log's last lines say what went wrong; resume from the run folder to continue.",
            details="\n".join(self.tail),
            run_dir=str(run.run_dir),
            last_checkpoint=_latest_checkpoint(Path(str(run.run_dir)) / CHECKPOINTS),
        )
        run._emit(event)
        return event
