"""mlcourse.data.oneshot.load_runs and `mlcourse eval-oneshot`, on a benchmark fabricated in the release format.

The runs are built in tmp_path from the small2 split's PNG files (tests/oneshot_fixture.py), as a
folder and as a zip; the real benchmark is never used.
"""
import importlib
import json
import os
import shutil
import sys
import types
import zipfile

import numpy as np
import pytest

from mlcourse import cli
from mlcourse.data import omniglot
from mlcourse.data.oneshot import OneShotRun, load_runs
from oneshot_fixture import data_dir, fabricate, small2_pngs, zip_folder

pytestmark = pytest.mark.skipif(data_dir() is None, reason="needs ../shared/data/omniglot (or $MLCOURSE_OMNIGLOT)")


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """(folder, zip, truth) of a 20-run, 20-way benchmark; the zip keeps the runs under all_runs/."""
    root = tmp_path_factory.mktemp("bench")
    truth = fabricate(root / "folder", num_runs=20, n_way=20, seed=3)
    fabricate(root / "nested", num_runs=20, n_way=20, seed=3, prefix="all_runs")
    return root / "folder", zip_folder(root / "nested", root / "all_runs.zip"), truth


def copy_of(folder, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(folder, dst)
    return dst


def test_folder_and_zip_give_the_runs_and_labels(bench):
    folder, zipped, truth = bench
    a, b = load_runs(folder), load_runs(zipped)
    assert [r.name for r in a] == [f"run{i:02d}" for i in range(1, 21)] == [r.name for r in b]
    for ra, rb in zip(a, b):
        assert isinstance(ra, OneShotRun) and ra.n_way == 20
        assert ra.x_support.shape == ra.x_query.shape == (20, 28, 28) and ra.x_support.dtype == np.float32
        assert ra.y_query.shape == (20,) and np.issubdtype(ra.y_query.dtype, np.integer)
        np.testing.assert_array_equal(ra.y_query, truth[ra.name][2])
        for x, y in ((ra.x_support, rb.x_support), (ra.x_query, rb.x_query), (ra.y_query, rb.y_query)):
            np.testing.assert_array_equal(x, y)


def test_pixels_equal_the_training_decoder_on_the_same_png(bench, tmp_path):
    """Query m of a run is the same drawing load_split returns for that character and drawer."""
    folder, _, truth = bench
    run = load_runs(folder)[0]
    chars, (d_support, d_query), y_query = truth[run.name]
    _, names = small2_pngs()
    # the same PNG files in the training splits' layout, read by the training loader
    with zipfile.ZipFile(data_dir() / "images_background_small2.zip") as z:
        for key in chars:
            for n in names[key]:
                target = tmp_path / "split" / n
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(z.read(n))
    data = omniglot.load_split("images_background_small2", root=tmp_path / "split", cache_dir=False)
    index = {(a, c): i for i, (a, c) in enumerate(zip(data.alphabet_of, data.character_of))}
    for k, key in enumerate(chars):
        np.testing.assert_array_equal(run.x_support[k], data.classes[index[key]][d_support])
    for m, k in enumerate(y_query):
        np.testing.assert_array_equal(run.x_query[m], data.classes[index[chars[k]]][d_query])
    ink = run.x_query.mean()
    assert 0.0 < ink < 0.25 and run.x_query.max() <= 1.0   # inverted: ink = 1 on a background of 0


def test_missing_path_and_missing_run(bench, tmp_path):
    folder, _, _ = bench
    with pytest.raises(FileNotFoundError, match="run01..run20"):
        load_runs(tmp_path / "nowhere")
    bad = copy_of(folder, tmp_path)
    shutil.rmtree(bad / "run07")
    with pytest.raises(ValueError, match="missing run07"):
        load_runs(bad)
    assert len(load_runs(bad, num_runs=6)) == 6


def test_missing_image_names_the_file(bench, tmp_path):
    bad = copy_of(bench[0], tmp_path)
    (bad / "run03" / "test" / "item05.png").unlink()
    with pytest.raises(ValueError, match=r"run03/test/item05\.png is missing"):
        load_runs(bad)
    bad2 = copy_of(bench[0], tmp_path / "b")
    (bad2 / "run02" / "training" / "class20.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"run02/training/class20\.png is not a readable PNG"):
        load_runs(bad2)


@pytest.mark.parametrize("text, match", [
    ("run01/test/item01.png\n", "line 1"),                                          # one path only
    ("run01/test/item01.png run01/training/class01.png extra\n", "line 1"),         # three fields
    ("run01/test/item01.png run02/training/class01.png\n", "same run"),             # another run's image
    ("run01/test/item1.png run01/training/class01.png\n", "itemMM"),                # not two digits
    ("", "empty"),
    ("run01/test/item01.png run01/training/class01.png\n" * 2, "exactly once"),     # item named twice
])
def test_malformed_class_labels(bench, tmp_path, text, match):
    bad = copy_of(bench[0], tmp_path)
    (bad / "run01" / "class_labels.txt").write_text(text)
    with pytest.raises(ValueError, match=match) as e:
        load_runs(bad)
    assert "run01/class_labels.txt" in str(e.value)


def test_truncated_zip_is_one_clear_error(bench, tmp_path):
    data = bench[1].read_bytes()
    cut = tmp_path / "all_runs.zip"
    cut.write_bytes(data[:len(data) // 2])   # the central directory at the end is gone
    with pytest.raises(ValueError, match="truncated"):
        load_runs(cut)
    # members damaged but the directory intact: reading a member fails with the member's name
    damaged = bytearray(data)
    with zipfile.ZipFile(bench[1]) as z:
        info = z.getinfo("all_runs/run01/training/class01.png")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    damaged[start:start + 40] = bytes(40)
    cut.write_bytes(bytes(damaged))
    with pytest.raises(ValueError, match=r"run01/training/class01\.png"):
        load_runs(cut)


# --- mlcourse eval-oneshot -------------------------------------------------------------------------------

@pytest.fixture
def fake_job(monkeypatch):
    """A stand-in for the omniglot job: nearest support image in pixel space; records its calls."""
    calls = []

    def evaluate_oneshot(runs, checkpoint=None):
        calls.append((len(runs), checkpoint))
        errors = []
        for r in runs:
            d = ((r.x_query[:, None] - r.x_support[None]) ** 2).sum(axis=(2, 3))
            errors.append(float(np.mean(d.argmin(axis=1) != r.y_query)))
        return {"errors": errors, "method": "pixels"}

    mod = types.ModuleType("mlcourse.experiments.omniglot_job")
    mod.evaluate_oneshot = evaluate_oneshot
    monkeypatch.setitem(sys.modules, "mlcourse.experiments.omniglot_job", mod)
    return calls


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_eval_oneshot_prints_runs_and_interval_and_writes_json(bench, tmp_path, capsys, fake_job):
    out_json = tmp_path / "oneshot.json"
    code, out, err = run(capsys, "eval-oneshot", str(bench[1]), "--json", str(out_json))
    assert code == 0, err
    assert fake_job == [(20, None)]
    summary = json.loads(out_json.read_text())
    e = np.array(summary["errors"])
    assert len(e) == 20 and summary["runs"][0] == "run01"
    assert summary["error"] == pytest.approx(e.mean())
    assert summary["ci95"] == pytest.approx(1.96 * e.std(ddof=1) / np.sqrt(20))
    assert f"overall error {100 * e.mean():.1f}% +- {100 * summary['ci95']:.1f}%" in out
    assert sum(line.strip().startswith("run") for line in out.splitlines()) == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["oneshot.json"]   # no temporary file left


def one_error_line(code, err):
    lines = err.strip().splitlines()
    assert code != 0 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_eval_oneshot_bad_input_is_one_line_and_writes_nothing(bench, tmp_path, capsys, fake_job):
    out_json = tmp_path / "out" / "oneshot.json"
    out_json.parent.mkdir()
    bad = copy_of(bench[0], tmp_path)
    (bad / "run04" / "class_labels.txt").write_text("garbage\n")
    cases = [
        (["eval-oneshot", str(tmp_path / "nowhere")], "does not exist"),
        (["eval-oneshot", str(bad)], "run04/class_labels.txt"),
        (["eval-oneshot", str(bench[0]), "--checkpoint", str(tmp_path / "none.npz")], "checkpoint"),
        (["eval-oneshot", str(bench[0]), "--json", str(tmp_path / "out")], "folder"),
        (["eval-oneshot", str(bench[0]), "--json", str(tmp_path / "no" / "x.json")], "does not exist"),
    ]
    for argv, match in cases:
        code, _, err = run(capsys, *argv, *([] if "--json" in argv else ["--json", str(out_json)]))
        assert match in one_error_line(code, err), argv
    assert list(out_json.parent.iterdir()) == []
    assert fake_job == []   # nothing was evaluated


def _job():
    try:
        job = importlib.import_module("mlcourse.experiments.omniglot_job")
    except ImportError:
        pytest.skip("the omniglot job is not there")
    return job


def test_eval_oneshot_end_to_end_with_a_checkpoint(bench, tmp_path, capsys):
    """The real job on a fresh (untrained) ProtoNet checkpoint; checkpoints of another kind are one line."""
    _job()
    from mlcourse import conv, train
    ckpt = tmp_path / "protonet.npz"
    meta = {"method": "protonet", "protocol": "minimal background", "image_size": 28}
    train.save_checkpoint(str(ckpt), conv.conv4_init(np.random.default_rng(0), channels=8), meta)
    out_json = tmp_path / "oneshot.json"
    code, out, err = run(capsys, "eval-oneshot", str(bench[1]), "--checkpoint", str(ckpt), "--json", str(out_json))
    assert code == 0, err
    summary = json.loads(out_json.read_text())
    assert len(summary["errors"]) == 20 and summary["method"] == "protonet"
    assert summary["checkpoint"] == str(ckpt.resolve())
    assert all(0.0 <= e <= 1.0 for e in summary["errors"]) and summary["error"] == pytest.approx(np.mean(summary["errors"]))
    assert f"overall error {100 * summary['error']:.1f}%" in out
    for name, bad_meta, match in (("other.npz", {"method": "sinusoid"}, "not an Omniglot checkpoint"),
                                  ("big.npz", {**meta, "image_size": 105}, "105x105")):
        train.save_checkpoint(str(tmp_path / name), conv.conv4_init(np.random.default_rng(0), channels=8), bad_meta)
        code, _, err = run(capsys, "eval-oneshot", str(bench[0]), "--checkpoint", str(tmp_path / name),
                           "--json", str(tmp_path / f"{name}.json"))
        assert match in one_error_line(code, err)
        assert not (tmp_path / f"{name}.json").exists()


def test_eval_oneshot_end_to_end_with_the_shipped_model(bench, tmp_path, capsys):
    job = _job()
    if not os.path.exists(os.path.join(job._shipped_dir(), "protonet.npz")):
        pytest.skip("the shipped ProtoNet (mlcourse/experiments/results/omniglot/protonet.npz) is not there yet")
    out_json = tmp_path / "oneshot.json"
    code, out, err = run(capsys, "eval-oneshot", str(bench[0]), "--json", str(out_json))
    assert code == 0, err
    summary = json.loads(out_json.read_text())
    assert len(summary["errors"]) == 20 and summary["method"] == "protonet"
    assert summary["error"] < 0.5   # a trained ProtoNet is far better than chance (95% error) on these runs
