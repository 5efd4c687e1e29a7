"""The published files lftf builds on, fetched on first use and trusted only by their sha256.

Each file is named as in the reference layout (``winobias/pro_stereotyped_type1.txt.dev``)
and pinned to where it was published: a public repository, a commit, a path, a sha256. It
is taken from the first of these that has it:

1. ``$LFTF_REFERENCE_DIR/<name>``: a folder laid out like ``SOURCES`` (a copy you keep,
   e.g. for machines without network);
2. the lftf cache, ``$LFTF_CACHE/reference/<name>`` (default ``~/.cache/lftf``);
3. a download of the raw file at that commit (``$LFTF_REFERENCE_URL``: a template with
   ``{repo}``, ``{commit}``, ``{path}`` and ``{name}``), written into the cache atomically
   and only after its sha256 matches.

A file whose sha256 is not the pinned one is never used, wherever it came from. Nothing
here is in the repository: it keeps this table, the code that builds from the files, and
the hashes it expects the build to have (``lftf_tasks.build``).

    from lftf_tasks import reference
    reference.path("winogender/templates.tsv")   # a verified local copy
    reference.fetch()                            # all of them, one error naming what is missing
"""

from __future__ import annotations

import hashlib
import http.client
import os
import secrets
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from lftf_tasks.outputs import remove_stale_temporaries, temporary_prefix
from lftf_tasks.paths import cache_root

DEFAULT_URL = "https://raw.githubusercontent.com/{repo}/{commit}/{path}"
TIMEOUT_S = 60


class ReferenceDataError(RuntimeError):
    """A published file lftf needs is missing or not the published one; the message says
    which, where it is fetched from and how to provide it."""


@dataclass(frozen=True)
class Source:
    name: str  # the path in the reference layout (and in the cache)
    repo: str  # owner/name of the public repository
    commit: str
    path: str  # inside the repository
    sha256: str
    licence: str  # the layout name of the licence that comes with it

    def url(self) -> str:
        template = os.environ.get("LFTF_REFERENCE_URL") or DEFAULT_URL
        return template.format(repo=self.repo, commit=self.commit, path=self.path, name=self.name)


COREFBIAS = ("uclanlp/corefBias", "0bce984dd081bbc10b0622f326727a024c607895")
WINOGENDER = ("rudinger/winogender-schemas", "1c7f8b481ad8a234b41e9f76a424d6e856e13f7f")
DEBIASWE = ("tolga-b/debiaswe", "6bb03ee2a0d7214339e513ca71cd0a99069dc29c")

# (name, (repository, commit), path in it, sha256, licence): every file lftf reads that
# someone else wrote. The licences are fetched and pinned like the data they cover.
_TABLE = [
    (
        "bolukbasi2016_professions.json",
        DEBIASWE,
        "data/professions.json",
        "32cc82c7761e7cfb14e37e06dc1aa9f758bc8441f79ca7288996d3fc7c24639a",
        "bolukbasi2016_LICENSE",
    ),
    (
        "bolukbasi2016_LICENSE",
        DEBIASWE,
        "LICENSE",
        "be45f9c3b9b5e15dd1798b50c6ac9e1dcbdbde107ac3cb51f7b23ebb3c1eaf5d",
        "bolukbasi2016_LICENSE",
    ),
    *(
        (
            f"winobias/{side}_stereotyped_type{t}.txt.{split}",
            COREFBIAS,
            f"WinoBias/wino/data/{side}_stereotyped_type{t}.txt.{split}",
            sha256,
            "winobias/LICENSE",
        )
        for (side, t, split), sha256 in {
            ("anti", 1, "dev"): "a4e0ebae344e78b56f657a42e8ae684b9db7747d177c5e7149c0907ebb7f3bf6",
            ("anti", 1, "test"): "331db5bd74bfefebf146a60b67645152a4a1991570d2a56f57154103ac361dd2",
            ("anti", 2, "dev"): "763ad829ad724f9a85ead689ba8ca69072020cb1238def6210f0fc6a47b97e59",
            ("anti", 2, "test"): "336571ac1ea8c06cd2aba8e5dd2bd98e00acc0c48da3e4ec5ec7e54eb2633a8f",
            ("pro", 1, "dev"): "dd55a0d220fe4c0ceb63dd4648223fb4fe1a58d5ad95c116a002ad24b0e292a5",
            ("pro", 1, "test"): "db7838907238a758eeb5779e48f38c013b892910d6fe864456c59f04245c6689",
            ("pro", 2, "dev"): "8f0250de723cea9328e3eaf7169e07936f01aa5909ce7aa580db66eb803f4e86",
            ("pro", 2, "test"): "ea1c1fd94fa612e3cc44d7fa3cc4cb76021bb63fdf94f9826f430051e9052438",
        }.items()
    ),
    (
        "winobias/LICENSE",
        COREFBIAS,
        "LICENSE",
        "fdc813af7e33d0d7852c742a8a3983934d3c1c770014062246883c194c363830",
        "winobias/LICENSE",
    ),
    (
        "winogender/templates.tsv",
        WINOGENDER,
        "data/templates.tsv",
        "496f2e2dc77296bcebcdd8865a8dc5715ce22b772de9abb5f531d5b3114c48a0",
        "winogender/LICENSE",
    ),
    (
        "winogender/occupations-stats.tsv",
        WINOGENDER,
        "data/occupations-stats.tsv",
        "3f7f37c16381a70571356982ea7fe613ac700ad04a6d3b19b9f2be18248df567",
        "winogender/LICENSE",
    ),
    (
        "winogender/LICENSE",
        WINOGENDER,
        "LICENSE",
        "22756588705091904ca7903df15eb7f6ed45a11a7eec0783567295e9502e9316",
        "winogender/LICENSE",
    ),
]
SOURCES = {
    name: Source(name, repo, commit, path, sha256, licence)
    for name, (repo, commit), path, sha256, licence in _TABLE
}


# The general-ability benchmarks (lftf_tasks.capability): folder in the layout ->
# (repository, commit, its folder in the repository, licence). Their sha256 are listed in
# capability.sha256 (our list of what we expect, one line per file, as sha256sum writes it).
_LLM_FOUNDRY = ("mosaicml/llm-foundry", "8c8dd48f72168c5d51e2f7b151595892a8fba43d")
_CAPABILITY_FOLDERS = {
    "mmlu/test": (
        ("HaeChan0305/MLILAB-FedLLM", "d92730e8bacd7b3a61e551e015e40588e10234b4"),
        "data/mmlu/test",
        "mmlu/LICENSE.hendrycks-test",
    ),
    "mmlu/dev": (
        ("HaeChan0305/MLILAB-FedLLM", "d92730e8bacd7b3a61e551e015e40588e10234b4"),
        "data/mmlu/dev",
        "mmlu/LICENSE.hendrycks-test",
    ),
    "gsm8k": (
        ("openai/grade-school-math", "3101c7d5072418e28b9008a6636bde82a006892c"),
        "grade_school_math/data",
        "gsm8k/LICENSE",
    ),
    "humaneval": (
        ("openai/human-eval", "6d43fb980f9fee3c892a914eda09951f772ad10d"),
        "data",
        "humaneval/LICENSE",
    ),
    "boolq": (_LLM_FOUNDRY, "scripts/eval/local_data/reading_comprehension", "boolq/LICENSE"),
    "arc": (_LLM_FOUNDRY, "scripts/eval/local_data/world_knowledge", "arc/LICENSE"),
    "winogrande": (
        _LLM_FOUNDRY,
        "scripts/eval/local_data/language_understanding",
        "winogrande/LICENSE",
    ),
    "piqa": (
        ("ybisk/ybisk.github.io", "21edab439af693b961be2f069e8690a88d3b4e37"),
        "piqa/data",
        "piqa/README.data.md",
    ),
    "gsm_plus": (
        ("qtli/GSM-Plus", "3474129ec12fcd3e8ac08cb037aca1928efca98c"),
        "dataset",
        "gsm_plus/README.md",
    ),
}
# files whose path in the repository is not <folder>/<name>
_CAPABILITY_PATHS = {
    "mmlu/LICENSE": (
        ("HaeChan0305/MLILAB-FedLLM", _CAPABILITY_FOLDERS["mmlu/test"][0][1]),
        "LICENSE",
    ),
    "mmlu/LICENSE.hendrycks-test": (
        ("hendrycks/test", "0aff600098ffa002d8e9f1ffe4d6e05475edd28e"),
        "LICENSE",
    ),
    "gsm8k/LICENSE": (_CAPABILITY_FOLDERS["gsm8k"][0], "LICENSE"),
    "humaneval/LICENSE": (_CAPABILITY_FOLDERS["humaneval"][0], "LICENSE"),
    "boolq/LICENSE": (_LLM_FOUNDRY, "LICENSE"),
    "arc/LICENSE": (_LLM_FOUNDRY, "LICENSE"),
    "winogrande/LICENSE": (_LLM_FOUNDRY, "LICENSE"),
    "piqa/README.data.md": (_CAPABILITY_FOLDERS["piqa"][0], "piqa/data/README.md"),
    "gsm_plus/README.md": (_CAPABILITY_FOLDERS["gsm_plus"][0], "README.md"),
}


def _capability_sources() -> dict[str, Source]:
    out = {}
    listing = Path(__file__).with_name("capability.sha256").read_text(encoding="utf-8")
    for line in listing.splitlines():
        sha256, name = line.split(maxsplit=1)
        folder, file = name.rsplit("/", 1)
        if name in _CAPABILITY_PATHS:
            (repo, commit), path = _CAPABILITY_PATHS[name]
            licence = (_CAPABILITY_FOLDERS.get(folder) or _CAPABILITY_FOLDERS[f"{folder}/test"])[2]
        else:
            (repo, commit), prefix, licence = _CAPABILITY_FOLDERS[folder]
            path = f"{prefix}/{file}"
        out[f"capability/{name}"] = Source(
            f"capability/{name}", repo, commit, path, sha256, f"capability/{licence}"
        )
    return out


# MMLU, GSM8K, HumanEval, ... (capability/<folder>/<file>): fetched only for those tasks.
CAPABILITY_SOURCES = _capability_sources()
_ALL_SOURCES = {**SOURCES, **CAPABILITY_SOURCES}


def reference_dir() -> Path | None:
    """``$LFTF_REFERENCE_DIR``, if set."""
    value = os.environ.get("LFTF_REFERENCE_DIR")
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    return cache_root() / "reference"


def sha256_of(path: Path) -> str:
    sha = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest()


# path -> (size, mtime_ns) it had when its sha256 matched: a file is hashed once per process.
_verified: dict[Path, tuple[int, int]] = {}


def _matches(path: Path, source: Source) -> bool:
    stat = path.stat()
    if _verified.get(path) == (stat.st_size, stat.st_mtime_ns):
        return True
    if sha256_of(path) != source.sha256:
        return False
    _verified[path] = (stat.st_size, stat.st_mtime_ns)
    return True


def _wrong_hash(path: Path, source: Source, where: str) -> str:
    return (
        f"{source.name}: {where} {path} has sha256 {sha256_of(path)[:16]}..., not the published "
        f"file's {source.sha256[:16]}... ({source.repo}@{source.commit[:12]}:{source.path}); "
        "it is not used"
    )


def _local(source: Source) -> Path | None:
    """A verified copy in ``$LFTF_REFERENCE_DIR`` or the cache; a cached copy with another
    hash is deleted (it is fetched again), one in the reference folder is an error."""
    folder = reference_dir()
    if folder is not None and (folder / source.name).is_file():
        path = folder / source.name
        if not _matches(path, source):
            raise ReferenceDataError(
                _wrong_hash(path, source, "LFTF_REFERENCE_DIR's")
                + ": replace it with the published file or unset LFTF_REFERENCE_DIR"
            )
        return path
    cached = cache_dir() / source.name
    if cached.is_file():
        if _matches(cached, source):
            return cached
        cached.unlink(missing_ok=True)
    return None


def _download(source: Source) -> Path:
    """The file fetched into the cache: written to a temporary beside it and renamed only
    after its sha256 matches, so no reader (another process included) sees a partial or
    wrong file; two processes that fetch at once each rename an identical copy."""
    target = cache_dir() / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target.parent)  # what a killed download left
    tmp = target.with_name(temporary_prefix(target.name) + secrets.token_hex(4))
    sha = hashlib.sha256()
    url = source.url()
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, tmp.open("wb") as out:
            for chunk in iter(lambda: response.read(1 << 16), b""):
                sha.update(chunk)
                out.write(chunk)
        if sha.hexdigest() != source.sha256:
            raise ReferenceDataError(
                f"{source.name}: the file downloaded from {url} has sha256 "
                f"{sha.hexdigest()[:16]}..., not the published file's {source.sha256[:16]}...; "
                "it is not used (nothing was written to the cache)"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _verified[target] = (target.stat().st_size, target.stat().st_mtime_ns)
    return target


def _missing_error(missing: dict[str, str]) -> ReferenceDataError:
    lines = "\n".join(
        f"  {name}  from {_ALL_SOURCES[name].url()} ({why})" for name, why in missing.items()
    )
    return ReferenceDataError(
        f"lftf needs {len(missing)} published file(s) it has no verified copy of:\n{lines}\n"
        f"They are downloaded on first use into {cache_dir()} and checked by sha256. Without "
        "network, set LFTF_REFERENCE_DIR to a folder that holds them under those names "
        "(copies made where the download works: python -m lftf_tasks.reference --copy-to DIR)."
    )


def fetch(names=None) -> dict[str, Path]:
    """{name: verified local path} for ``names`` (default: every source), downloading what
    no local copy has. Raises one ReferenceDataError naming every file it could not get."""
    names = list(SOURCES if names is None else names)
    unknown = [n for n in names if n not in _ALL_SOURCES]
    if unknown:
        raise KeyError(f"not a reference file: {unknown}; known: {sorted(_ALL_SOURCES)}")
    found, to_download = {}, []
    for name in names:
        path = _local(_ALL_SOURCES[name])
        if path is None:
            to_download.append(name)
        else:
            found[name] = path
    missing = {}
    for i, name in enumerate(to_download, start=1):
        print(f"lftf: fetching {name} ({i}/{len(to_download)})", file=sys.stderr)
        try:
            found[name] = _download(_ALL_SOURCES[name])
        except (OSError, ValueError, http.client.HTTPException) as err:  # offline, 404, cut off
            missing[name] = f"{type(err).__name__}: {getattr(err, 'reason', err)}"
    if missing:
        raise _missing_error(missing)
    return {name: found[name] for name in names}


def path(name: str) -> Path:
    """The verified local copy of one reference file."""
    return fetch([name])[name]


def source_files(folder: str, names, override: Path | None = None) -> dict[str, Path]:
    """{file name: path} of files under ``folder/`` of the layout, or in ``override`` (a
    folder of copies, as the build's tests hand it damaged ones)."""
    if override is not None:
        return {n: Path(override) / n for n in names}
    found = fetch([f"{folder}/{n}" for n in names])
    return {n: found[f"{folder}/{n}"] for n in names}


def copy_to(folder: Path, names=None) -> list[Path]:
    """Every verified reference file (or ``names``) copied into ``folder`` in the layout
    ``LFTF_REFERENCE_DIR`` reads: for a machine without network."""
    import shutil

    written = []
    for name, source in fetch(names).items():
        target = Path(folder) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m lftf_tasks.reference",
        description="Fetch and verify the published files lftf builds on; list where each "
        "comes from.",
    )
    parser.add_argument("--copy-to", type=Path, help="also copy them into this folder")
    parser.add_argument(
        "--capability",
        action="store_true",
        help="also the general-ability benchmarks (MMLU, GSM8K, ...; 18.6 MB)",
    )
    args = parser.parse_args(argv)
    names = [*SOURCES, *(CAPABILITY_SOURCES if args.capability else ())]
    try:
        found = fetch(names)
        if args.copy_to:
            copy_to(args.copy_to, names)
    except ReferenceDataError as err:
        print(f"python -m lftf_tasks.reference: error: {err}", file=sys.stderr)
        return 2
    for name, local in found.items():
        s = _ALL_SOURCES[name]
        print(f"{s.sha256[:12]}  {name}  {s.repo}@{s.commit[:12]}:{s.path}  -> {local}")
    if args.copy_to:
        print(
            f"copied {len(found)} files to {args.copy_to} (use: LFTF_REFERENCE_DIR={args.copy_to})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
