"""The published files on first use, against a real HTTP server on 127.0.0.1 that serves a
copy of the reference layout: downloaded and verified once, a wrong file never used, a
killed download never trusted, two processes at once ending with one good copy, and a
clear error (no traceback) when no copy can be had."""

from __future__ import annotations

import glob
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lftf_tasks import reference

from ..helpers import BIN

SMALL = "winogender/templates.tsv"


class Server:
    """A loopback file server over ``folder``, counting the requests per file; ``delay``
    seconds before each response, ``stall`` files are sent half and then held."""

    def __init__(self, folder: Path, delay: float = 0.0, stall: tuple[str, ...] = ()):
        self.folder, self.delay, self.stall = Path(folder), delay, stall
        self.requests: list[str] = []
        self.release = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                name = self.path.lstrip("/")
                server.requests.append(name)
                time.sleep(server.delay)
                path = server.folder / name
                if not path.is_file():
                    self.send_error(404)
                    return
                body = path.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if name in server.stall:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    server.release.wait(60)
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/{{name}}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    """A copy of every reference file in the reference layout (what ../shared/reference
    holds), from wherever this machine's verified copies are."""
    folder = tmp_path_factory.mktemp("served")
    reference.copy_to(folder)
    return folder


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    """No LFTF_REFERENCE_DIR, an empty cache: a new user's machine. Returns the env."""
    monkeypatch.delenv("LFTF_REFERENCE_DIR", raising=False)
    monkeypatch.setenv("LFTF_CACHE", str(tmp_path / "cache"))
    reference._verified.clear()
    yield tmp_path / "cache"
    reference._verified.clear()


@pytest.fixture
def serve(monkeypatch):
    servers = []

    def start(folder, **kwargs):
        server = Server(folder, **kwargs)
        servers.append(server)
        monkeypatch.setenv("LFTF_REFERENCE_URL", server.url)
        return server

    yield start
    for server in servers:
        server.close()


def temporaries(folder: Path) -> list[Path]:
    return [p for p in Path(folder).rglob(".*") if ".tmp-" in p.name]


def test_the_table_pins_every_file_of_the_reference_layout(layout):
    assert {str(p.relative_to(layout)) for p in layout.rglob("*") if p.is_file()} == set(
        reference.SOURCES
    )
    for name, source in reference.SOURCES.items():
        assert reference.sha256_of(layout / name) == source.sha256, name
        assert len(source.commit) == 40 and source.licence in reference.SOURCES
    source = reference.SOURCES["winobias/pro_stereotyped_type1.txt.dev"]
    assert reference.DEFAULT_URL.format(**vars(source)) == (
        "https://raw.githubusercontent.com/uclanlp/corefBias/"
        "0bce984dd081bbc10b0622f326727a024c607895/WinoBias/wino/data/pro_stereotyped_type1.txt.dev"
    )


def test_first_use_downloads_and_verifies_and_the_second_makes_no_request(fresh, serve, layout):
    server = serve(layout)
    found = reference.fetch()
    assert sorted(server.requests) == sorted(reference.SOURCES)
    for name, path in found.items():
        assert path == fresh / "reference" / name
        assert path.read_bytes() == (layout / name).read_bytes()
    reference._verified.clear()  # as a new process: hashed again, not downloaded
    assert reference.fetch() == found
    assert len(server.requests) == len(reference.SOURCES)
    assert not temporaries(fresh)


def test_a_corrupted_download_is_refused_and_not_cached(fresh, serve, layout, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(layout, bad)
    (bad / SMALL).write_bytes((bad / SMALL).read_bytes().replace(b"nurse", b"nurze", 1))
    serve(bad)
    with pytest.raises(reference.ReferenceDataError, match="not the published file") as err:
        reference.fetch([SMALL])
    assert SMALL in str(err.value)
    assert not (fresh / "reference" / SMALL).exists()
    assert not temporaries(fresh)


def test_a_cached_file_with_another_hash_is_never_used_and_fetched_again(fresh, serve, layout):
    server = serve(layout)
    reference.fetch([SMALL])
    (fresh / "reference" / SMALL).write_text("damaged\n")
    reference._verified.clear()
    assert reference.path(SMALL).read_bytes() == (layout / SMALL).read_bytes()
    assert server.requests == [SMALL, SMALL]


def test_a_wrong_file_in_the_reference_dir_is_an_error(fresh, monkeypatch, layout, tmp_path):
    mine = tmp_path / "mine"
    shutil.copytree(layout, mine)
    (mine / SMALL).write_text("not the templates\n")
    monkeypatch.setenv("LFTF_REFERENCE_DIR", str(mine))
    monkeypatch.setenv("LFTF_REFERENCE_URL", "http://127.0.0.1:9/{name}")
    with pytest.raises(reference.ReferenceDataError, match="LFTF_REFERENCE_DIR"):
        reference.fetch()
    other = "winogender/occupations-stats.tsv"  # the folder's good files are used
    assert reference.path(other) == mine / other


def test_offline_without_a_copy_is_one_error_naming_files_source_and_setting(fresh, monkeypatch):
    monkeypatch.setenv("LFTF_REFERENCE_URL", "http://127.0.0.1:9/{repo}/{commit}/{path}")
    with pytest.raises(reference.ReferenceDataError) as err:
        reference.fetch()
    message = str(err.value)
    for name, source in reference.SOURCES.items():
        assert name in message and source.url() in message
    assert "LFTF_REFERENCE_DIR" in message
    assert not [p for p in fresh.rglob("*") if p.is_file()]


FETCH_ALL = "from lftf_tasks import reference; reference.fetch()"


def _python(code: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_download_killed_half_way_leaves_nothing_a_later_run_trusts(fresh, serve, layout):
    server = serve(layout, stall=(SMALL,))
    proc = _python(
        f"from lftf_tasks import reference; reference.fetch([{SMALL!r}])", dict(os.environ)
    )
    folder = fresh / "reference" / "winogender"
    deadline = time.time() + 60
    while not (server.requests and temporaries(fresh)) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # half the body is sent; the download waits for the rest
    (partial,) = temporaries(fresh)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    server.release.set()
    assert not (folder / "templates.tsv").exists() and partial.exists()
    server.stall = ()
    assert reference.path(SMALL).read_bytes() == (layout / SMALL).read_bytes()
    assert not partial.exists()  # its writer is gone: removed as stale


def test_two_processes_populating_an_empty_cache_end_with_one_good_copy(fresh, serve, layout):
    server = serve(layout, delay=0.05)
    procs = [_python(FETCH_ALL, dict(os.environ)) for _ in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert len(server.requests) > len(reference.SOURCES)  # they did overlap
    for name in reference.SOURCES:
        assert (fresh / "reference" / name).read_bytes() == (layout / name).read_bytes()
    assert not temporaries(fresh)


def test_two_processes_building_the_data_at_once_end_with_one_good_build(
    fresh, monkeypatch, layout
):
    monkeypatch.setenv("LFTF_REFERENCE_DIR", str(layout))
    code = "from lftf_tasks import build; print(build.data_dir())"
    procs = [_python(code, dict(os.environ)) for _ in range(2)]
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        outs.append(out.strip())
    assert outs[0] == outs[1] and len(list((fresh / "data").iterdir())) == 1
    from lftf_tasks import build

    assert build._intact(Path(outs[0]), build.recorded())


def _run(cmd: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_lftf_eval_on_a_fresh_machine_downloads_verifies_and_scores(
    fresh, serve, layout, tiny_llama, tmp_path
):
    """The issue's proof on a tiny model: no LFTF_REFERENCE_DIR, no cache, the loopback
    server; then the same pointed at nothing: the clear error, no traceback."""
    path, _, _ = tiny_llama
    server = serve(layout)
    tasks = "genbiaseval,winobias,winogender_next"
    cmd = [str(BIN / "lftf-eval"), "--model", "hf", "--model_args", f"pretrained={path}"]
    cmd += ["--tasks", tasks, "--limit", "8", "--output_path", str(tmp_path / "out")]
    proc = _run(cmd, dict(os.environ))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(server.requests) == sorted(reference.SOURCES)
    (results,) = glob.glob(f"{tmp_path}/out/*/results_*.json")
    scores = json.loads(Path(results).read_text())["results"]
    assert {"genbiaseval", "winobias", "winogender_next"} <= set(scores)
    assert 0 <= scores["genbiaseval"]["afgb,none"] <= 1

    env = {**os.environ, "LFTF_CACHE": str(tmp_path / "empty")}
    env["LFTF_REFERENCE_URL"] = "http://127.0.0.1:9/{name}"
    proc = _run(cmd, env)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "lftf-eval: error: lftf needs" in proc.stderr and "LFTF_REFERENCE_DIR" in proc.stderr
    assert not (tmp_path / "empty" / "data").exists()


@pytest.mark.slow
def test_plain_lm_eval_builds_the_data_through_the_task_hooks(
    fresh, monkeypatch, layout, tiny_llama, tmp_path
):
    """lm_eval itself, no lftf entry point: the hooks build the data in the empty cache."""
    from lftf_tasks import include_path

    path, _, _ = tiny_llama
    monkeypatch.setenv("LFTF_REFERENCE_DIR", str(layout))
    cmd = [str(BIN / "lm_eval"), "--model", "hf", "--model_args", f"pretrained={path}"]
    cmd += ["--tasks", "genhinteval,winogender_next", "--include_path", include_path()]
    cmd += ["--limit", "4", "--output_path", str(tmp_path / "out")]
    proc = _run(cmd, dict(os.environ))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(list((fresh / "data").iterdir())) == 1


def test_lftf_train_without_the_data_stops_before_any_model_with_one_error(
    fresh, monkeypatch, capsys, tmp_path
):
    from lftf_train import cli

    monkeypatch.setenv("LFTF_REFERENCE_URL", "http://127.0.0.1:9/{name}")
    out = tmp_path / "loc"
    assert cli.main(["locate", "--model", "no/such-model", "--output-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"lftf-train: error: lftf needs {len(reference.SOURCES)} published" in err
    assert "Traceback" not in err
    assert "no/such-model" not in err  # the model was never looked for
    assert not out.exists()
