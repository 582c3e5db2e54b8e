"""`mlcourse bench omniglot`: a short run of the NumPy rows, the gradient check and the table."""
import json

import numpy as np
import pytest

from mlcourse.experiments import omniglot_bench as bench


def test_a_short_numpy_run_times_both_rows_and_says_why_pytorch_is_missing(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert bench.main(["--rounds", "1", "--repeats", "1", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert set(res["rows"]) == {"protonet", "fomaml"} and res["torch_skipped"] == "no --reference-python given"
    for row in res["rows"].values():
        assert row["numpy"]["seconds"] > 0 and row["numpy"]["peak_mib"] > 0 and "gradient_check" not in row
    assert len(res["setup"]["load_average_before"]) == 3
    table = capsys.readouterr().out
    assert "ProtoNet training episode" in table and "PyTorch rows skipped" in table and "load average" in table


def _grads(path, scale=1.0, loss=1.0):
    rng = np.random.default_rng(0)
    np.savez(path, loss=loss, W0=scale * rng.standard_normal((3, 3, 1, 4)), gamma0=scale * np.ones(4), beta0=np.zeros(4))
    return path


def test_gradient_check_is_the_largest_difference_over_the_largest_reference_entry(tmp_path):
    a, b = _grads(tmp_path / "a.npz"), _grads(tmp_path / "b.npz", scale=1.0 + 1e-9, loss=1.5)
    check = bench.gradient_check(a, b)
    ref = np.load(b)
    top = max(np.max(np.abs(ref[k])) for k in ("W0", "gamma0", "beta0"))
    want = max(np.max(np.abs(np.load(a)[k] - ref[k])) for k in ("W0", "gamma0", "beta0")) / top
    assert check["rel_error"] == pytest.approx(want) and 1e-10 < check["rel_error"] < 1e-8
    assert check["loss_difference"] == pytest.approx(0.5)
    np.savez(tmp_path / "c.npz", loss=1.0, W0=np.zeros((3, 3, 1, 4)))
    with pytest.raises(ValueError, match="different parameters"):
        bench.gradient_check(a, tmp_path / "c.npz")


def test_the_table_shows_ratio_memory_and_gradient_check():
    row = {"numpy": {"seconds": 0.3, "peak_mib": 250.0}, "torch": {"seconds": 0.5, "peak_mib": 800.0},
           "ratio_numpy_over_torch": 0.6, "gradient_check": {"rel_error": 4.2e-12}}
    res = {"setup": {"images": 360, "n_way": 60, "k_shot": 1, "k_query": 5, "episode": "Omniglot", "threads": 2,
                     "repeats": 5, "rounds": 3, "fomaml_inner_steps": 5, "load_average_before": [1.0, 2.0, 3.0],
                     "load_average_after": [1.5, 2.0, 3.0]},
           "rows": {"protonet": row}, "torch_skipped": None, "loader": {"skipped": "no data"}}
    table = bench.format_table(res)
    line = next(x for x in table.splitlines() if x.startswith("ProtoNet"))
    assert line.split()[3:] == ["0.300", "0.500", "0.60", "250", "800", "4.2e-12"]
    assert "1.00, 2.00, 3.00 before" in table
