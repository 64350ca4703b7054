"""Shared test setup: quiet, small, one thread per xdist worker, no network."""

from __future__ import annotations

import os

import pytest
import torch

# Two xdist workers on two cores: one thread each avoids oversubscription.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def one_thread():
    """Run a test on one torch thread (many tiny models: threading costs more than it gives)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def kill_and_resume():
    """Start ``cmd`` (a ``vislab <task> train`` command line), SIGKILL it once ``run/metrics.csv`` has ``after`` epochs,
    then ``vislab <task> train --resume run``; returns the epoch of the checkpoint the kill left."""
    import json
    import signal
    import subprocess
    import sys
    import time

    def run(cmd: list[str], run_dir, task: str, after: int = 2) -> int:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        metrics = run_dir / "metrics.csv"
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            if metrics.exists() and len(metrics.read_text().splitlines()) >= after + 1:  # header + epochs: inside the next
                break
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_at = json.loads((run_dir / "checkpoints" / "last.json").read_text())["epoch"]
        resumed = subprocess.run([sys.executable, "-m", "vislab", task, "train", "--resume", str(run_dir)], capture_output=True,
                                 text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stderr
        return killed_at

    return run


@pytest.fixture
def cli(capsys):
    """Run the vislab CLI in-process: returns (exit code, stdout, stderr)."""
    from vislab.cli.main import main

    def run(*args: str) -> tuple[int, str, str]:
        try:
            main(list(args))
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture
def watch_streaming(monkeypatch):
    """``watch_streaming()``: from then on whole-video reads (``read_video``) fail, and the frames decoded
    (``iter_frames``), the frames written to an mp4 and the most decoded but not yet written at any time (``lag``) are
    counted in the dict it returns -- for tests that a command streams a long video."""

    def start() -> dict[str, int]:
        from vislab.data.video import io

        def whole(*a, **k):
            raise AssertionError("read_video: the whole video read at once")

        seen = {"decoded": 0, "written": 0, "lag": 0}
        real_iter, real_write = io.iter_frames, io.VideoWriter.write

        def iter_frames(*a, **k):
            inner = real_iter(*a, **k)

            def counted():
                try:
                    for f in inner:
                        seen["decoded"] += 1
                        seen["lag"] = max(seen["lag"], seen["decoded"] - seen["written"])
                        yield f
                finally:
                    inner.close()

            return counted()

        def write(self, frame):
            real_write(self, frame)
            seen["written"] += self.ext == ".mp4"

        monkeypatch.setattr(io, "read_video", whole)
        monkeypatch.setattr(io, "iter_frames", iter_frames)
        monkeypatch.setattr(io.VideoWriter, "write", write)
        return seen

    return start
