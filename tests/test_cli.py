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


def test_fingerprint_covers_every_part_and_the_code(tmp_path, monkeypatch):
    from gs.train import checkpoint

    base = ("3dgs", {"a": 1}, {"iterations": 20, "seed": 0}, {"path": "s"}, None, ())
    fp = checkpoint.checkpoint_fingerprint(*base)
    changed = [("gns", *base[1:]), (base[0], {"a": 2}, *base[2:]),
               (*base[:2], {"iterations": 40, "seed": 0}, *base[3:]), (*base[:2], {"iterations": 20, "seed": 1}, *base[3:]),
               (*base[:3], {"path": "t"}, *base[4:])]
    assert len({fp, *(checkpoint.checkpoint_fingerprint(*c) for c in changed)}) == 1 + len(changed)
    monkeypatch.setattr(checkpoint, "trainer_version", lambda: "other code")
    assert checkpoint.checkpoint_fingerprint(*base) != fp


def test_unstamped_checkpoints_are_not_resumed(tmp_path):
    from gs.train.checkpoint import CheckpointMismatchError, claim_checkpoints

    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "ckpt_10.pt").write_bytes(b"x")  # written before fingerprints
    with pytest.raises(CheckpointMismatchError, match="--restart"):
        claim_checkpoints(tmp_path, "abc")
    assert (tmp_path / "checkpoints" / "ckpt_10.pt").exists()
    assert claim_checkpoints(tmp_path, "abc", restart=True) is False
    assert not (tmp_path / "checkpoints" / "ckpt_10.pt").exists()
    (tmp_path / "checkpoints" / "ckpt_20.pt").write_bytes(b"x")
    assert claim_checkpoints(tmp_path, "abc") is True  # same run: resume
