"""The plain-process benchmark: every row present, gradients agree, reference rows skipped with a reason.

Speed itself is never asserted: the rows are timed with a handful of repeats only.
"""
import json
import os
import subprocess
import sys

import pytest

from mlcourse.experiments import speed

FAST = ("maml", "fomaml", "reptile", "maml_autograd", "metasgd", "metasgd_autograd", "anil", "anil_autograd")


@pytest.fixture(scope="module")
def result():
    return speed.run(steps=(1, 2), repeats=3, rounds=2, quick=True, paths=FAST + ("jax", "torch"),
                     meta_batch_size=5)


def test_every_row_for_every_step_count(result):
    keys = {(r["key"], r["inner_steps"]) for r in result["rows"]}
    assert {(p, m) for p in FAST for m in (1, 2)} <= keys
    for r in result["rows"]:
        assert len(r["ms_rounds"]) == 2 and r["ms_min"] <= r["ms"] <= r["ms_max"]
        assert r["peak_rss_mib"] > 0 and r["x_fastest"] >= 1.0
        assert 0 < r["cpu_per_wall"] < 4, r        # CPU seconds per wall second of the timed loop
    if hasattr(os, "sched_getaffinity"):        # each worker confined to one CPU (experiments._cpus)
        assert result["settings"]["cpus"] == f"CPU {sorted(os.sched_getaffinity(0))[-1]}"


def test_gradients_agree_with_the_public_api(result):
    for r in result["rows"]:
        assert r["grad_diff"] is not None and r["grad_diff"] < 1e-4, r  # float32, different summation orders


def test_reference_rows_skipped_with_a_reason_without_a_reference_interpreter(result):
    import importlib.util
    for lib in ("jax", "torch"):
        if importlib.util.find_spec(lib) is None:
            assert "--reference-python" in result["skipped"][lib]
            assert not any(r["key"] == lib for r in result["rows"])


def test_json_round_trips_settings_versions_and_memory_definitions(result, tmp_path):
    path = tmp_path / "speed.json"
    path.write_text(json.dumps(result))
    back = json.loads(path.read_text())
    assert back["settings"]["sizes"] == [1, 40, 40, 1] and back["settings"]["rounds"] == 2
    assert back["memory"]["compared"] in back["memory"] and "numpy" in back["versions"]


def test_bad_arguments_give_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown path"):
        speed.run(paths=["nope"])
    with pytest.raises(ValueError, match="does not exist"):
        speed.run(paths=["maml"], reference_python=str(tmp_path / "no-python"))
    with pytest.raises(ValueError, match="repeats"):
        speed.run(repeats=0)
    for bad in (["--steps", "one"], ["--rounds", "0"], ["--paths", "maml,nope"],
                ["--reference-python", str(tmp_path / "missing")]):
        r = subprocess.run([sys.executable, "-m", "mlcourse.experiments.speed", *bad], capture_output=True, text=True)
        assert r.returncode == 2 and "error:" in r.stderr, (bad, r.stderr)


def test_cli_writes_the_json_table(tmp_path):
    out = tmp_path / "t.json"
    r = subprocess.run([sys.executable, "-m", "mlcourse", "bench", "--steps", "1", "--repeats", "3", "--quick",
                        "--paths", "maml,fomaml", "--json", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "x fastest" in r.stdout and "x JAX" in r.stdout
    rows = json.loads(out.read_text())["rows"]
    assert [row["key"] for row in rows] == ["maml", "fomaml"]


def test_metasgd_and_anil_reference_rows_compute_the_same_gradients():
    """The JAX rows of Meta-SGD and ANIL: same gradient as the public API's, and "x JAX" against them.

    Needs an interpreter with jax: this one, or the one named by MLCOURSE_REFERENCE_PYTHON.
    """
    import importlib.util
    import os
    reference = os.environ.get("MLCOURSE_REFERENCE_PYTHON")
    if importlib.util.find_spec("jax") is None and not reference:
        pytest.skip("jax is not installed here and MLCOURSE_REFERENCE_PYTHON is not set (JAX is a reference "
                    "library of the benchmark, never a dependency)")
    paths = ("metasgd", "metasgd_autograd", "metasgd_jax", "anil", "anil_autograd", "anil_jax")
    result = speed.run(steps=(1, 3), repeats=3, rounds=1, quick=True, paths=paths, meta_batch_size=5,
                       reference_python=reference)
    rows = {(r["key"], r["inner_steps"]): r for r in result["rows"]}
    assert set(rows) == {(p, m) for p in paths for m in (1, 3)}
    for (key, m), r in rows.items():
        assert r["grad_diff"] is not None and r["grad_diff"] < 1e-4, r
        method = key.split("_")[0]
        assert r["jax_row"] == f"{method}_jax" and r["x_jax"] == r["ms"] / rows[(f"{method}_jax", m)]["ms"]
    for m in ("1", "3"):
        assert {"metasgd_x_jax", "anil_x_jax", "metasgd_grad_diff_jax"} <= set(result["summary"][m])


def test_plain_bench_prints_the_maml_rl_table_after_the_sinusoid_one(tmp_path, monkeypatch, capsys):
    """`mlcourse bench` without --paths runs rl_bench too (shrunk here to one row of each table)."""
    from mlcourse.experiments import rl_bench
    real_run, real_rl = speed.run, rl_bench.run
    monkeypatch.setattr(speed, "run", lambda **kw: real_run(**dict(kw, paths=["fomaml"], repeats=2)))
    monkeypatch.setattr(rl_bench, "run", lambda ref, rounds, repeats: real_rl(ref, rounds=rounds, repeats=1,
                                                                              threads=(1,), rows=("rollouts",)))
    out = tmp_path / "all.json"
    assert speed.main(["--steps", "1", "--quick", "--json", str(out)], reexec=False) == 0
    text = capsys.readouterr().out
    assert "x JAX" in text and "rollouts of one meta-iteration" in text
    assert json.loads(out.read_text())["rl"]["rows"]["1"]["rollouts"]["seconds"] > 0
    assert speed.main(["--steps", "1", "--quick", "--no-rl"], reexec=False) == 0
    assert "rollouts of one meta-iteration" not in capsys.readouterr().out
