"""`mlcourse bench rl`: the hand-derived and the autograd rows time the same meta-gradient (their float64
gradients agree to rounding), the two rollout rows sample the same trajectories, the table prints, bad options
are one-line errors, and the PyTorch rows are skipped with their reason when no interpreter with torch is given."""
import json

from mlcourse import cli
from mlcourse.experiments import rl_bench


def test_bench_rl_rows_agree_and_print(tmp_path, capsys):
    out = tmp_path / "rl.json"
    assert cli.main(["bench", "rl", "--paths", ",".join(rl_bench.ROWS), "--threads", "1", "--rounds", "1",
                     "--repeats", "1", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "mlcourse, hand-derived (public path)" in text and "PyTorch rows skipped: no --reference-python" in text
    assert "mlcourse, rollout_policy (public path)" in text
    res = json.loads(out.read_text())
    block = res["rows"]["1"]
    assert set(block) == {"mlcourse", "autograd", "rollouts", "rollouts_generic"}
    assert block["autograd"]["diff_float64"] <= 1e-10 and block["mlcourse"]["seconds"] > 0
    assert block["rollouts_generic"]["diff_float64"] <= 1e-12 and block["rollouts"]["seconds"] > 0


def test_bench_rl_bad_options_are_one_line_errors(capsys):
    assert rl_bench.main(["--paths", "jax"]) == 1
    assert "unknown path(s) ['jax']" in capsys.readouterr().err
    assert rl_bench.main(["--threads", "0"]) == 1
    assert "must be integers >= 1" in capsys.readouterr().err
