"""Training through `accelerate launch`: DDP over several GPUs (or CPU processes), FSDP and several
machines through an accelerate config file.

The stage writes the request (records and settings) into the lot's work dir and starts
`accelerate launch -m opensem.training.launch REQUEST`; every process builds the same trainer, the
Trainer picks up the distributed environment, and rank 0 saves the artifact. Rank 0 reports
progress, log lines and errors as tagged JSON lines on stdout, which the stage turns back into its
progress bar and log; the outcome comes back as a JSON file. Checkpoints go to the same work dir as
an in-process run's, so a killed launch resumes like any other.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from opensem import errors
from opensem.core.files import write_json
from opensem.data.records import write_records
from opensem.errors import OpensemError, StageError
from opensem.training.methods.base import Runtime, TrainHooks, TrainOutcome, TrainRequest

TAG = "@opensem "


def train_launched(
    method: str, request: TrainRequest, processes: int, config_file: Path | None
) -> TrainOutcome:
    """Run method on request in `processes` processes through accelerate; returns rank 0's outcome."""
    folder = request.work_dir / "launch"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "outcome.json").unlink(missing_ok=True)
    records = folder / "records.jsonl"
    write_records(records, request.records)
    validation = folder / "validation.jsonl"
    if request.eval_records:
        write_records(validation, request.eval_records)
    spec = {
        "method": method,
        "model_path": request.model_path,
        "records": str(records),
        "out_dir": str(request.out_dir),
        "work_dir": str(request.work_dir),
        "base_model_name": request.base_model_name,
        "params": request.params.model_dump(mode="json"),
        "runtime": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in dataclasses.asdict(request.runtime).items()
        },
        "models": request.models,
        "eval_records": str(validation) if request.eval_records else None,
    }
    write_json(folder / "request.json", spec)
    command = launch_command(
        processes, config_file, request.params.compute.mixed_precision, folder / "request.json"
    )
    request.log.info(
        "launching %d training process%s: %s",
        processes,
        "es" if processes != 1 else "",
        " ".join(command[2:]),
    )
    stderr_file = folder / "stderr.log"
    error: dict[str, Any] | None = None
    with stderr_file.open("w", encoding="utf-8") as stderr:
        child = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=_environment(processes),
            preexec_fn=_die_with_parent,
        )
        assert child.stdout is not None
        try:
            for line in child.stdout:
                if line.startswith(TAG):
                    event = json.loads(line[len(TAG) :])
                    error = event if event["event"] == "error" else error
                    _dispatch(event, request)
                elif line.strip():
                    request.log.debug("%s", line.rstrip())
            code = child.wait()
        except BaseException:
            child.terminate()
            child.wait()
            raise
    if error is not None:
        kind = getattr(errors, error["kind"], StageError)
        raise (
            kind(error["message"], hint=error["hint"])
            if issubclass(kind, OpensemError)
            else StageError(error["message"])
        )
    outcome_file = folder / "outcome.json"
    if code != 0 or not outcome_file.is_file():
        tail = stderr_file.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
        raise StageError(
            f"accelerate launch failed (exit {code}): {' | '.join(tail) or 'no output'}",
            hint=f"its full output is in {stderr_file}",
        )
    return TrainOutcome(**json.loads(outcome_file.read_text(encoding="utf-8")))


def launch_command(
    processes: int, config_file: Path | None, mixed_precision: str, request_file: Path
) -> list[str]:
    """The `accelerate launch` command line, through this interpreter so the same environment trains.

    Several processes use accelerate's multi-GPU launcher (torch.distributed); on a machine
    without CUDA the Trainer then runs each process on the CPU over gloo.
    """
    command = [sys.executable, "-m", "accelerate.commands.launch"]
    if config_file is not None:
        command += ["--config_file", str(config_file)]
    else:
        command += ["--num_machines", "1", "--dynamo_backend", "no"]
    command += ["--num_processes", str(processes), "--main_process_port", str(free_port())]
    if processes > 1 and config_file is None:
        command.append("--multi_gpu")
    if mixed_precision != "auto":
        command += ["--mixed_precision", mixed_precision]
    return [*command, "-m", "opensem.training.launch", str(request_file)]


def _environment(processes: int) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault(
        "OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // processes))
    )  # CPU processes share the cores
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _die_with_parent() -> None:
    """Linux: stop the launcher when the build that started it is killed, so no orphan keeps training."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _dispatch(event: dict[str, Any], request: TrainRequest) -> None:
    hooks, kind = request.hooks, event["event"]
    if kind == "start":
        hooks.on_start(event["total"], event["done"])
    elif kind == "step":
        hooks.on_step()
    elif kind == "row":
        hooks.on_log(event["row"])
    elif kind == "resume":
        hooks.on_resume(event["step"], event["checkpoint"])
    elif kind == "end":
        hooks.on_end()
    elif kind == "log":
        request.log.log(event["level"], "%s", event["message"])


class _Forward(logging.Handler):
    """Rank 0's log records, sent to the parent as events."""

    def __init__(self, emit: Any) -> None:
        super().__init__(logging.INFO)
        self.send = emit

    def emit(self, record: logging.LogRecord) -> None:
        self.send({"event": "log", "level": record.levelno, "message": record.getMessage()})


def main(argv: list[str] | None = None) -> int:
    """One training process: read the request, train, and (rank 0) report and write the outcome."""
    from opensem.training.config import TrainParams
    from opensem.training.data import load_records
    from opensem.training.methods import get_method

    spec = json.loads(Path((argv or sys.argv[1:])[0]).read_text(encoding="utf-8"))
    lead = int(os.environ.get("RANK", "0")) == 0

    def emit(event: dict[str, Any]) -> None:
        if lead:
            sys.stdout.write(TAG + json.dumps(event) + "\n")
            sys.stdout.flush()

    log = logging.getLogger("opensem.train.worker")
    log.setLevel(logging.INFO)
    log.addHandler(_Forward(emit))
    log.propagate = False
    hooks = TrainHooks(
        on_start=lambda total, done: emit({"event": "start", "total": total, "done": done}),
        on_step=lambda: emit({"event": "step"}),
        on_log=lambda row: emit({"event": "row", "row": row}),
        on_end=lambda: emit({"event": "end"}),
        on_resume=lambda step, checkpoint: emit(
            {"event": "resume", "step": step, "checkpoint": checkpoint}
        ),
    )
    runtime: dict[str, Any] = {
        k: (Path(v) if k == "tracking_dir" and v else v) for k, v in spec["runtime"].items()
    }
    request = TrainRequest(
        model_path=spec["model_path"],
        records=load_records(Path(spec["records"])).records,
        out_dir=Path(spec["out_dir"]),
        work_dir=Path(spec["work_dir"]),
        params=TrainParams.model_validate(spec["params"]),
        base_model_name=spec["base_model_name"],
        hooks=hooks,
        runtime=Runtime(**runtime),
        log=log,
        eval_records=load_records(Path(spec["eval_records"])).records
        if spec.get("eval_records")
        else None,
        models=spec.get("models", {}),
    )
    try:
        outcome = get_method(spec["method"]).train(request)
    except OpensemError as exc:
        emit(
            {"event": "error", "kind": type(exc).__name__, "message": exc.message, "hint": exc.hint}
        )
        return 1
    if lead:
        outcome_file = Path(spec["work_dir"]) / "launch" / "outcome.json"
        write_json(outcome_file, dataclasses.asdict(outcome))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
