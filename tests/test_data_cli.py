"""`mlcourse data` and `mlcourse data omniglot`: downloads from a local HTTP server only (never the internet).

Checked: the sha256 of a known split, the record-then-verify rule for unknown ones, truncated and
corrupt downloads, HTTP errors, the atomic write (nothing half-written, an old file kept intact), the
URL override (--url and $MLCOURSE_OMNIGLOT_URL) and the report of where each split was found.
"""
import zipfile
from pathlib import Path

import pytest

from mlcourse import cli
from mlcourse.data import omniglot
from mlcourse.site.audit import QuietHandler, serve
from oneshot_fixture import data_dir


Quiet = QuietHandler   # the site audit's local server serves the downloads too


class ShortBody(Quiet):
    """Announces the whole file in Content-Length, then sends half of it and hangs up."""

    def do_GET(self):
        data = (Path(self.directory) / self.path.lstrip("/")).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[:len(data) // 2])
        self.wfile.flush()
        self.close_connection = True


def tiny_zip(path, text="a"):
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("images_evaluation/Alpha/character01/0001_01.png", text * 1000)
    return path


@pytest.fixture
def env(monkeypatch, tmp_path):
    """An empty cache and no data folder: nothing is found unless a test puts it there."""
    monkeypatch.setenv("MLCOURSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(omniglot.ENV_VAR, raising=False)
    monkeypatch.delenv(omniglot.URL_ENV_VAR, raising=False)
    return tmp_path / "cache" / "omniglot"


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(code, err):
    lines = err.strip().splitlines()
    assert code != 0 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.skipif(data_dir() is None, reason="needs ../shared/data/omniglot (or $MLCOURSE_OMNIGLOT)")
def test_known_split_downloads_into_the_cache_verified_and_loads(capsys, env):
    with serve(data_dir()) as url:
        code, out, err = run(capsys, "data", "omniglot", "--split", "images_background_small2", "--url", url)
    assert code == 0, err
    target = env / "images_background_small2.zip"
    assert f"{omniglot.KNOWN_SHA256[target.name]} verified" in out
    assert omniglot.sha256sum(target) == omniglot.KNOWN_SHA256[target.name]
    assert sorted(p.name for p in env.iterdir()) == [target.name]   # no temporary file left behind
    assert omniglot.find_split("images_background_small2") == target   # loading now finds it in the cache
    # already there: no second download, it says so
    code, out, _ = run(capsys, "data", "omniglot", "--split", "images_background_small2", "--url", "http://127.0.0.1:9/")
    assert code == 0 and "already there" in out


def test_unknown_checksum_is_recorded_then_verified(capsys, env, tmp_path):
    served = tmp_path / "served"
    tiny_zip(served / "images_evaluation.zip")
    with serve(served) as url:
        code, out, err = run(capsys, "data", "omniglot", "--split", "images_evaluation", "--url", url)
    assert code == 0, err
    target = env / "images_evaluation.zip"
    digest = omniglot.sha256sum(target)
    assert f"recorded {digest}" in out
    assert (env / "images_evaluation.zip.sha256").read_text().split()[0] == digest
    assert omniglot.expected_sha256(target) == digest
    tiny_zip(target, text="b")   # the zip changes after its first download: every later use refuses it
    code, _, err = run(capsys, "data", "omniglot", "--split", "images_evaluation")
    assert "sha256" in one_error_line(code, err)
    with pytest.raises(ValueError, match="sha256"):
        omniglot.verify(target)


def test_wrong_checksum_is_one_line_and_writes_nothing(capsys, env, tmp_path, monkeypatch):
    served = tmp_path / "served"
    tiny_zip(served / "images_evaluation.zip")
    monkeypatch.setitem(omniglot.KNOWN_SHA256, "images_evaluation.zip", "0" * 64)
    with serve(served) as url:
        code, _, err = run(capsys, "data", "omniglot", "--split", "images_evaluation", "--url", url)
    assert "sha256" in one_error_line(code, err)
    assert not env.exists() or list(env.iterdir()) == []


@pytest.mark.parametrize("how", ["short file", "short body"])
def test_truncated_download_is_one_line_and_writes_nothing(capsys, env, tmp_path, how):
    served = tmp_path / "served"
    full = tiny_zip(served / "full.zip").read_bytes()
    (served / "images_evaluation.zip").write_bytes(full[:len(full) // 2])   # served with its own (short) length
    handler = ShortBody if how == "short body" else Quiet
    if how == "short body":
        (served / "images_evaluation.zip").write_bytes(full)
    with serve(served, handler) as url:
        code, _, err = run(capsys, "data", "omniglot", "--split", "images_evaluation", "--url", url)
    line = one_error_line(code, err)
    assert "truncated" in line or "IncompleteRead" in line, line
    assert not env.exists() or list(env.iterdir()) == []


def test_failed_overwrite_keeps_the_old_file_intact(capsys, env, tmp_path):
    old = tiny_zip(env / "images_evaluation.zip")
    before = old.read_bytes()
    served = tmp_path / "served"
    served.mkdir()
    (served / "images_evaluation.zip").write_bytes(b"not a zip at all")
    with serve(served) as url:
        code, _, err = run(capsys, "data", "omniglot", "--split", "images_evaluation", "--url", url, "--overwrite")
        assert "zip" in one_error_line(code, err)
        code, _, err = run(capsys, "data", "omniglot", "--split", "images_evaluation", "--url", url + "nowhere/",
                           "--overwrite")
        assert "404" in one_error_line(code, err)
    assert old.read_bytes() == before
    assert sorted(p.name for p in env.iterdir()) == ["images_evaluation.zip"]


def test_url_from_the_environment_and_the_benchmark_path(capsys, env, tmp_path, monkeypatch):
    served = tmp_path / "served"
    tiny_zip(served / "one-shot-classification" / "all_runs.zip")   # where the release keeps the benchmark
    with serve(served) as url:
        monkeypatch.setenv(omniglot.URL_ENV_VAR, url)
        code, out, err = run(capsys, "data", "omniglot", "--split", "all_runs")
    assert code == 0, err
    assert (env / "all_runs.zip").is_file() and "one-shot-classification/all_runs.zip" in out


def test_unknown_split_and_unreachable_server(capsys, env):
    code, _, err = run(capsys, "data", "omniglot", "--split", "images_nonsense")
    assert "images_background_small1" in one_error_line(code, err)
    code, _, err = run(capsys, "data", "omniglot", "--split", "images_evaluation", "--url", "http://127.0.0.1:9/",)
    assert "could not download" in one_error_line(code, err)
    assert not env.exists() or list(env.iterdir()) == []


def test_report_says_where_each_split_is_or_the_command(capsys, env, tmp_path, monkeypatch):
    folder = tmp_path / "data"
    tiny_zip(folder / "images_background_small1.zip")
    monkeypatch.setenv(omniglot.ENV_VAR, str(folder))
    code, out, _ = run(capsys, "data")
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert set(lines) == {*omniglot.SPLITS, omniglot.BENCHMARK}
    assert f"found: {folder / 'images_background_small1.zip'}" in lines["images_background_small1"]
    assert "mlcourse data omniglot --split images_background_small2" in lines["images_background_small2"]
    assert omniglot.ENV_VAR in lines["images_evaluation"]


def test_missing_data_message_names_the_command(env):
    with pytest.raises(omniglot.MissingDataError, match="mlcourse data omniglot --split images_background_small1"):
        omniglot.find_split("images_background_small1")


@pytest.mark.skipif(data_dir() is None, reason="needs ../shared/data/omniglot (or $MLCOURSE_OMNIGLOT)")
def test_the_protocols_one_command_fetches_both_of_its_splits(capsys, env):
    """What notebook 06 prints when Omniglot is missing is one command; it gets every split the protocol reads."""
    from mlcourse.data import protocol
    assert protocol.missing_splits() == protocol.SPLITS
    command = omniglot.download_command(*protocol.missing_splits())
    argv = command.split()[1:]
    assert argv == ["data", "omniglot", "--split", *protocol.SPLITS]
    with serve(data_dir()) as url:
        code, out, err = run(capsys, *argv, "--url", url)
    assert code == 0, err
    assert protocol.missing_splits() == ()
    assert sorted(p.name for p in env.iterdir()) == sorted(f"{s}.zip" for s in protocol.SPLITS)
    # one zip URL cannot serve two splits
    code, _, err = run(capsys, *argv, "--url", url + "images_background_small1.zip")
    assert "--url names one zip" in one_error_line(code, err)


@pytest.mark.skipif(data_dir() is None, reason="needs ../shared/data/omniglot (or $MLCOURSE_OMNIGLOT)")
def test_notebook_download_button_fetches_each_split_and_fills_its_bar(env):
    """The button notebook 06 offers beside the command: one click downloads every missing split into the
    cache, one step of the bar per split; a failed download re-enables the button and writes nothing."""
    from mlcourse.data import protocol
    from mlcourse.viz import episodes
    box = episodes.download_button(protocol.SPLITS, url="http://127.0.0.1:9/")
    button, bar = box.children[0].children
    button.click()
    assert bar.value == 0 and not button.disabled
    assert not env.exists() or not any(env.iterdir())
    with serve(data_dir()) as url:
        box = episodes.download_button(protocol.SPLITS, url=url)
        button, bar = box.children[0].children
        assert bar.max == len(protocol.SPLITS) and bar.value == 0
        button.click()
    assert bar.value == bar.max and button.disabled
    assert protocol.missing_splits() == ()
