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
