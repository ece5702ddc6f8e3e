"""The command line under reruns: a finished run folder is only resumed by the same run (the
pipeline's fingerprint), bad schedules are refused, and `evaluate` prints what it wrote."""

from __future__ import annotations

import json

import pytest

from gs import cli
from gs.data import generate_scene

COMMON = ["--backend", "torch", "--device", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return generate_scene(tmp_path_factory.mktemp("scene") / "demo", seed=0, num_views=6, width=32, height=24,
                          num_points=300)


def _train(scene, out, *extra):
    return cli.main(["train", str(scene), str(out), *COMMON, *extra])


def test_rerun_with_other_args_refused_and_restart_starts_fresh(scene, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(scene, out, "--iterations", "20") == 0
    model = (out / "point_cloud.ply").read_bytes()
    capsys.readouterr()
    for changed in (["--iterations", "40"], ["--iterations", "20", "--method", "gns"],
                    ["--iterations", "20", "--seed", "1"], ["--iterations", "20", "--set", "grad_threshold=0.001"]):
        assert _train(scene, out, *changed) == 2, changed
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "different run" in err and "--restart" in err, err
        assert (out / "point_cloud.ply").read_bytes() == model  # nothing of the old run touched
    # the same run resumes from its final checkpoint (no new training)
    assert _train(scene, out, "--iterations", "20") == 0
    assert "resuming" in capsys.readouterr().out
    # --restart trains the new schedule from scratch
    assert _train(scene, out, "--iterations", "40", "--restart") == 0
    assert "resuming" not in capsys.readouterr().out
    stats = json.loads((out / "train_stats.json").read_text())
    assert stats["iterations"] == 40 and stats.get("resumed_from") in (None, "")


@pytest.mark.parametrize("value", ["-5", "0", "ten"])
def test_bad_iterations_rejected(scene, tmp_path, capsys, value):
    with pytest.raises(SystemExit) as e:
        _train(scene, tmp_path / "run", "--iterations", value)
    assert e.value.code == 2
    assert "--iterations" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_evaluate_prints_what_it_wrote(scene, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(scene, out, "--iterations", "10") == 0
    capsys.readouterr()
    assert cli.main(["evaluate", str(out / "point_cloud.ply"), str(scene), str(tmp_path / "eval"),
                     "--backend", "torch"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    written = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    shown = json.loads(lines[-1])
    assert str(tmp_path / "eval" / "metrics.json") in lines[-2]
    for key in ("psnr", "ssim"):
        assert shown[key] is not None and shown[key] == written["metrics"][key]
    assert shown["num_gaussians"] == written["num_gaussians"]
