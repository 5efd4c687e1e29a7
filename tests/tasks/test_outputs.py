import pytest

from lftf_tasks.outputs import atomic_output_dir, provenance


def test_output_appears_only_when_the_block_finishes(tmp_path):
    out = tmp_path / "run"
    with atomic_output_dir(out) as tmp:
        (tmp / "a.txt").write_text("done")
        assert not out.exists()
    assert (out / "a.txt").read_text() == "done"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_failure_or_interrupt_leaves_nothing_and_keeps_an_old_output(tmp_path, error):
    out = tmp_path / "run"
    with atomic_output_dir(out) as tmp:
        (tmp / "a.txt").write_text("old")
    with pytest.raises(error):
        with atomic_output_dir(out, overwrite=True) as tmp:
            (tmp / "a.txt").write_text("half")
            raise error()
    assert (out / "a.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_existing_output_is_refused_without_overwrite(tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(FileExistsError, match="--overwrite"):
        with atomic_output_dir(tmp_path / "run"):
            pass


def test_provenance_names_versions_date_and_command():
    info = provenance(seed=3)
    assert info["seed"] == 3 and info["produced_by"].startswith("lftf ")
    assert {"torch", "transformers", "peft", "lm_eval", "python"} <= set(info["versions"])
    assert info["date"].endswith("+00:00")


KILLED_WRITER = """
import sys, time
from pathlib import Path
from lftf_tasks.outputs import atomic_output_dir
with atomic_output_dir(Path(sys.argv[1])) as tmp:
    (tmp / "weights.bin").write_bytes(b"x" * 100_000)
    print("writing", flush=True)
    time.sleep(60)
"""


def _writer(out):
    """A process in the middle of writing ``out``: (process, its hidden temporary)."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(out)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "writing"
    (tmp,) = [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.tmp-")]
    return proc, tmp


def test_a_later_run_removes_what_a_killed_run_left_and_keeps_a_live_ones(tmp_path):
    killed, left = _writer(tmp_path / "finetune")
    killed.kill()  # SIGKILL: no cleanup runs
    killed.wait()
    assert (left / "weights.bin").exists() and not (tmp_path / "finetune").exists()
    live, writing = _writer(tmp_path / "other")
    try:
        with atomic_output_dir(tmp_path / "finetune") as tmp:
            (tmp / "done").write_text("1")
        assert not left.exists()  # its pid is gone: provably stale
        assert writing.exists()  # its writer still runs
    finally:
        live.kill()
        live.wait()
    assert (tmp_path / "finetune" / "done").exists()
