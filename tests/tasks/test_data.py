import json
from collections import Counter

import pytest

from lftf_tasks import build, data_dir, professions, reference
from lftf_tasks.axis import load_professions
from lftf_tasks.transfer.winogender import load_bls


def read(rel):
    with (data_dir() / rel).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def bias():
    return [r for split in build.SPLITS for r in read(f"genbiaseval/{split}.jsonl")]


@pytest.fixture(scope="module")
def hint():
    return read("genhinteval/test.jsonl")


def test_rebuild_is_byte_identical():
    for rel, text in build.render().items():
        assert (build.PACKAGE_DIR / rel).read_bytes() == text.encode("utf-8"), rel


def test_build_check_command_reports_up_to_date(capsys):
    assert build.main(["--check"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_the_data_build_has_the_recorded_sha256_and_no_published_file_is_in_the_package():
    data = build.render_data()
    assert build.recorded() == {rel: build._sha256(text) for rel, text in data.items()}
    assert {"genbiaseval/test.jsonl", "winobias/test.jsonl", "professions.json"} <= set(data)
    assert not (build.PACKAGE_DIR / "data").exists()
    published = {reference.sha256_of(p) for p in reference.fetch().values()}
    shipped = [
        p for p in build.PACKAGE_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts
    ]
    assert not [p for p in shipped if reference.sha256_of(p) in published]


def test_a_build_that_is_not_the_recorded_one_is_refused(tmp_path, monkeypatch):
    """A spec or builder changed without recording the new build: the data is not used."""
    package = tmp_path / "package"
    package.mkdir()
    lines = (build.PACKAGE_DIR / build.CHECKSUMS).read_text().splitlines(keepends=True)
    changed = [
        ("0" * 64 + line[64:]) if "genbiaseval/test.jsonl" in line else line for line in lines
    ]
    (package / build.CHECKSUMS).write_text("".join(changed))
    monkeypatch.setattr(build, "PACKAGE_DIR", package)
    monkeypatch.setenv("LFTF_CACHE", str(tmp_path / "cache"))
    with pytest.raises(build.BuildMismatchError, match="genbiaseval/test.jsonl"):
        build.data_dir()
    assert not list((tmp_path / "cache").glob("data/*"))


def test_a_damaged_data_build_in_the_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("LFTF_CACHE", str(tmp_path))
    folder = build.data_dir()
    assert folder.parent == tmp_path / "data"
    good = (folder / "genbiaseval" / "test.jsonl").read_bytes()
    (folder / "genbiaseval" / "test.jsonl").write_text("{}\n")
    build._data_dir.cache_clear()  # a new process
    assert build.data_dir() == folder
    assert (folder / "genbiaseval" / "test.jsonl").read_bytes() == good


def test_genbiaseval_has_the_papers_table_1_counts(bias):
    assert len(bias) == 2358
    counts = Counter((r["scale"], r["split"]) for r in bias)
    expected = {"word": (326, 152, 308), "phrase": (299, 157, 330), "sentence": (318, 162, 306)}
    for scale, sizes in expected.items():
        assert tuple(counts[(scale, s)] for s in ("train", "dev", "test")) == sizes
    assert Counter(r["split"] for r in bias) == {"train": 943, "dev": 471, "test": 944}


def test_split_files_hold_only_their_split():
    for split in build.SPLITS:
        assert {r["split"] for r in read(f"genbiaseval/{split}.jsonl")} == {split}


def test_262_unique_professions_each_in_all_nine_templates(bias):
    per_profession = Counter(r["profession"] for r in bias)
    assert len(per_profession) == 262
    assert set(per_profession.values()) == {9}
    assert len({r["template_id"] for r in bias}) == 9


def test_no_profession_carries_a_gender_hint():
    professions = build.load_professions()
    removed = {r["word"] for r in professions["removed"]}
    gendered_suffixes = ("man", "woman", "men", "women", "ess", "ina", "master", "wife")
    for entry in professions["kept"]:
        assert abs(entry["definitional"]) <= 0.25, entry
        assert not entry["word"].endswith(gendered_suffixes), entry
        assert entry["word"] not in removed
    assert len(professions["kept"]) + len(professions["removed"]) == 320
    assert all(r["reason"] for r in professions["removed"])


def test_curated_list_is_the_reference_filtered_by_the_stated_rule():
    source = json.loads(reference.path(professions.SOURCE).read_text())
    not_occupations = {r["word"] for r in build.load_professions()["removed"]} & {
        w for w, d, _ in source if abs(d) <= 0.25
    }
    assert len(not_occupations) == 12
    expected = [w for w, d, _ in source if abs(d) <= 0.25 and w not in not_occupations]
    assert [e["word"] for e in build.load_professions()["kept"]] == expected


def test_prompts_are_unique_clean_and_gender_neutral(bias):
    prompts = [r["prompt"] for r in bias]
    assert len(set(prompts)) == len(prompts)
    assert len({r["id"] for r in bias}) == len(bias)
    gendered = {"he", "she", "his", "her", "him", "man", "woman", "male", "female"}
    for p in prompts:
        assert p == p.strip() and "  " not in p
        assert p.startswith("The ") and p.endswith(" because")
        assert not gendered & set(p.lower().split()), p


@pytest.mark.parametrize("split", ["test", "dev"])
def test_hint_prompts_are_balanced_within_each_template(split):
    hint = read(f"genhinteval/{split}.jsonl")
    assert len(hint) == 786 and {r["split"] for r in hint} == {split}
    assert len({r["prompt"] for r in hint}) == 786
    assert Counter(r["hint"] for r in hint) == {"his": 393, "her": 393}
    for template in {r["template_id"] for r in hint}:
        rows = [r for r in hint if r["template_id"] == template]
        assert Counter(r["hint"] for r in rows) == {"his": 131, "her": 131}
        assert len({r["profession"] for r in rows}) == 262
    for r in hint:
        assert f" {r['hint']} " in r["prompt"]
        assert r["hint_gender"] == {"his": "male", "her": "female"}[r["hint"]]
        assert r["prompt"] == r["prompt"].strip()


def test_hint_dev_and_test_share_no_template():
    def templates(split):
        return {
            r["prompt"].replace(r["profession"], "X").replace(" her ", " his ")
            for r in read(f"genhinteval/{split}.jsonl")
        }

    assert len(templates("test")) == len(templates("dev")) == 3
    assert not templates("test") & templates("dev")


def test_records_carry_the_documented_fields(bias, hint):
    fields = {"id", "profession", "template_id", "scale", "prompt", "split"}
    assert set(bias[0]) == fields | {"stereotypical", "definitional", "bls_pct_female"}
    kept = {e["word"].replace("_", " "): e for e in load_professions()["kept"]}
    bls = load_bls()
    for r in bias:  # the Bolukbasi scores and labour statistics of the record's profession
        entry = kept[r["profession"]]
        assert (r["stereotypical"], r["definitional"]) == (
            entry["stereotypical"],
            entry["definitional"],
        )
        assert r["bls_pct_female"] == bls.get(r["profession"])
    assert len({r["profession"] for r in bias if r["bls_pct_female"] is not None}) == 41
    assert set(hint[0]) == {
        "id",
        "profession",
        "template_id",
        "hint",
        "hint_gender",
        "prompt",
        "split",
    }


def test_loads_with_plain_datasets_json(tmp_path):
    import datasets

    files = {s: str(data_dir() / "genbiaseval" / f"{s}.jsonl") for s in build.SPLITS}
    ds = datasets.load_dataset("json", data_files=files, cache_dir=str(tmp_path))
    assert {k: len(v) for k, v in ds.items()} == {"train": 943, "dev": 471, "test": 944}
    hints = datasets.load_dataset(
        "json", data_files=str(data_dir() / "genhinteval" / "test.jsonl"), cache_dir=str(tmp_path)
    )
    assert len(hints["train"]) == 786


def test_data_card_documents_rule_reconstruction_and_every_removed_word():
    card = (data_dir() / "README.md").read_text()
    assert "reconstruction" in card and "0.25" in card
    for entry in build.load_professions()["removed"]:
        assert f"| {entry['word'].replace('_', ' ')} |" in card
