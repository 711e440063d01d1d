"""Zoo training is resumable: an interrupted training, restarted with the same state folder,
ends with the very weights an uninterrupted one gets, and a finished checkpoint is never
retrained. Runs a tiny recipe (a few steps of an 8-wide model) so it costs seconds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalharness.zoo import train

TINY = train.Recipe(steps=6, batch=4, warmup=2, keep=(0.5, 1.0), length_grouped=True,
                    pool_batches=2)
SIZE = train.Size(8, seed=0, heads=1)


@pytest.fixture
def tiny_checks(monkeypatch):
    """Health and held-out loss on a handful of sums: their cost is not what is tested."""
    from evalharness.zoo import health

    monkeypatch.setattr(health, "PER_DIGITS", 2)
    monkeypatch.setattr(health, "DIGITS", (3,))
    small = health.heldout_loss_set(n=4)
    monkeypatch.setattr(health, "heldout_loss_set", lambda: small)
    real = health.health
    monkeypatch.setattr(health, "health", lambda model, tok: real(model, tok, (3,), 2))


def _final_sha(out: Path) -> str:
    return json.loads((out / SIZE.name / "zoo_entry.json").read_text())["sha256"]


def _interrupt_after_four(monkeypatch):
    """Training dies (Ctrl-C) at its fifth batch, past one periodic state save (every 2
    steps); returns the real batch stream, to put back for the resumed run."""
    monkeypatch.setattr(train, "STATE_EVERY", 2)
    real_batches = train.batches

    def dies_after_four(*args, **kwargs):
        for i, batch in enumerate(real_batches(*args, **kwargs)):
            if i == 4:
                raise KeyboardInterrupt
            yield batch

    monkeypatch.setattr(train, "batches", dies_after_four)
    return real_batches


def test_an_interrupted_training_resumes_to_the_same_weights(tmp_path, monkeypatch, tiny_checks):
    whole = train.train_one(SIZE, TINY, tmp_path / "whole", set())
    assert whole["step"] == 6 and [c["step"] for c in whole["checkpoints"]] == [3]

    # interrupted after step 4: past the kept checkpoint (3) and one periodic state save (4)
    real_batches = _interrupt_after_four(monkeypatch)
    state = tmp_path / "state"
    with pytest.raises(KeyboardInterrupt):
        train.train_one(SIZE, TINY, tmp_path / "resumed", set(), state_dir=state)
    saved = __import__("torch").load(state / f"{SIZE.name}.pt", weights_only=False)
    assert saved["step"] == 4
    monkeypatch.setattr(train, "batches", real_batches)
    resumed = train.train_one(SIZE, TINY, tmp_path / "resumed", set(), state_dir=state)

    assert _final_sha(tmp_path / "resumed") == _final_sha(tmp_path / "whole")
    assert resumed["tokens"] == whole["tokens"]
    assert [c["sha256"] for c in resumed["checkpoints"]] == [c["sha256"] for c in whole["checkpoints"]]
    assert not (state / f"{SIZE.name}.pt").exists()  # a finished training leaves no state


def test_a_state_saved_without_its_head_count_resumes_from_its_weights_shape(
        tmp_path, monkeypatch, tiny_checks):
    """States written before they recorded "heads" resume when their weights have the asked
    shape, and another shape starts afresh rather than failing to load."""
    torch = __import__("torch")
    real_batches = _interrupt_after_four(monkeypatch)
    state = tmp_path / "state"
    with pytest.raises(KeyboardInterrupt):
        train.train_one(SIZE, TINY, tmp_path / "a", set(), state_dir=state)
    path = state / f"{SIZE.name}.pt"
    saved = torch.load(path, weights_only=False)
    del saved["heads"]
    torch.save(saved, path)
    assert train._state_heads(saved) == SIZE.heads
    monkeypatch.setattr(train, "batches", real_batches)
    lines = []
    monkeypatch.setattr("builtins.print", lambda *a, **k: lines.append(" ".join(map(str, a))))
    train.train_one(SIZE, TINY, tmp_path / "a", set(), state_dir=state)
    assert any("resuming at step 4" in line for line in lines)


def test_a_finished_checkpoint_is_kept_and_another_head_count_is_retrained(
        tmp_path, monkeypatch, tiny_checks):
    monkeypatch.setattr(train.synth, "write_heldout_sets", lambda d: tmp_path / "none.jsonl")
    monkeypatch.setattr(train.synth, "read_jsonl_ids", lambda p: set())
    trained = []
    real = train.train_one

    def counting(size, *args, **kwargs):
        trained.append(size.name)
        return real(size, *args, **kwargs)

    monkeypatch.setattr(train, "train_one", counting)
    monkeypatch.setattr(train, "_worker", lambda args: counting(*args))
    monkeypatch.setattr(train.mp, "get_context", lambda kind: _InProcess())
    out = tmp_path / "zoo"
    train.train_zoo(out, tmp_path, TINY, [SIZE], jobs=1)
    train.train_zoo(out, tmp_path, TINY, [SIZE], jobs=1)
    assert trained == [SIZE.name]  # the second call found it finished
    train.train_zoo(out, tmp_path, TINY, [train.Size(8, seed=0, heads=2)], jobs=1)
    assert trained == [SIZE.name, SIZE.name]
    manifest = json.loads((out / "manifest.json").read_text())
    assert [m["heads"] for m in manifest["models"]] == [2]


class _InProcess:
    """Stands in for a spawn context: the pool maps in this process (monkeypatches hold)."""

    def Pool(self, jobs):  # noqa: N802 - the multiprocessing name
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def imap_unordered(self, fn, work, chunksize=1):
        return map(fn, work)


def test_terminating_the_trainer_stops_its_workers(tmp_path):
    """kill (SIGTERM) on `zoo train` must not orphan its pool: orphaned workers keep training
    and write checkpoints and states beside the next run's."""
    import os
    import signal
    import subprocess
    import sys

    import psutil

    script = tmp_path / "train.py"
    script.write_text(
        "from pathlib import Path\n"
        "from evalharness.zoo import train\n"
        "recipe = train.Recipe(steps=10**5, batch=2, warmup=2, keep=(1.0,))\n"
        "if __name__ == '__main__':  # spawned workers import this file\n"
        f"    train.train_zoo(Path({str(tmp_path / 'zoo')!r}), Path({str(tmp_path)!r}), recipe,\n"
        "                    [train.Size(8, seed=0, heads=1)], jobs=1)\n")
    proc = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONPATH": os.getcwd()})
    parent = psutil.Process(proc.pid)
    workers = []
    try:
        # wait until a worker is training (busy workers do not notice a dead parent)
        for line in proc.stdout:
            if "] step" in line:
                break
        workers = [c for c in parent.children(recursive=True)
                   if "spawn_main" in " ".join(c.cmdline())]
        assert workers, "the trainer started no worker"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        gone, alive = psutil.wait_procs(workers, timeout=30)
        assert not alive, f"workers left running: {[p.pid for p in alive]}"
    finally:
        for p in workers + (parent.children(recursive=True) if parent.is_running() else []):
            if p.is_running():
                p.kill()
        proc.kill()


def test_widths_the_head_count_cannot_divide_are_refused_before_any_training(tmp_path,
                                                                              monkeypatch):
    from typer.testing import CliRunner

    from evalharness import cli
    from evalharness.zoo import train

    started = []
    monkeypatch.setattr(train, "train_zoo", lambda *a, **k: started.append(a[3]) or [])
    res = CliRunner().invoke(cli.app, ["zoo", "train", "--recipe", "v3", "--sizes", "24,20,12",
                                       "--out", str(tmp_path)])
    assert res.exit_code == 2 and "20, 12 are not multiples of 8 heads" in res.output
    assert not started
    # without --sizes, v3's 8 heads train every width they divide; v2's 4 heads all eleven
    for recipe, n in (("v3", 9), ("v2", 11)):
        res = CliRunner().invoke(cli.app, ["zoo", "train", "--recipe", recipe, "--seeds", "0",
                                           "--out", str(tmp_path)])
        assert res.exit_code == 0, res.output
        assert len(started[-1]) == n and all(s.hidden % s.heads == 0 for s in started[-1])
