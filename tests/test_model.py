import numpy as np
import pytest
import torch

from gs.model import GaussianModel, PlyFormatError, file_size_bytes


def random_model(n=50, degree=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    k = (degree + 1) ** 2
    return GaussianModel(dict(
        means=torch.randn(n, 3, generator=g), scales=torch.randn(n, 3, generator=g) - 3,
        quats=torch.randn(n, 4, generator=g), opacities=torch.randn(n, generator=g),
        sh0=torch.randn(n, 1, 3, generator=g), shN=torch.randn(n, k - 1, 3, generator=g)), degree)


@pytest.mark.parametrize("degree", [0, 1, 3])
def test_ply_round_trip_is_exact(tmp_path, degree):
    m = random_model(degree=degree)
    path = m.save_ply(tmp_path / "pc.ply")
    m2 = GaussianModel.load_ply(path)
    assert m2.sh_degree == degree
    for k in m.params:
        assert torch.equal(m.params[k].detach(), m2.params[k].detach()), k


def test_ply_property_order_matches_original_layout(tmp_path):
    from plyfile import PlyData

    m = random_model(n=3, degree=3)
    path = m.save_ply(tmp_path / "pc.ply")
    names = [p.name for p in PlyData.read(str(path))["vertex"].properties]
    assert names[:9] == ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
    assert names[9:54] == [f"f_rest_{i}" for i in range(45)]
    assert names[54:] == ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    # 62 float32 per Gaussian (+ header)
    assert file_size_bytes(path) - 3 * 62 * 4 < 2000
    # f_rest is channel-major: f_rest_0..14 are the red coefficients
    v = PlyData.read(str(path))["vertex"]
    assert np.allclose(v["f_rest_1"], m.params["shN"][:, 1, 0].detach().numpy())
    assert np.allclose(v["f_rest_15"], m.params["shN"][:, 0, 1].detach().numpy())


def test_ply_missing_property_names_file_and_property(tmp_path):
    from plyfile import PlyData, PlyElement

    arr = np.zeros(4, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4")])
    path = tmp_path / "points.ply"
    PlyData([PlyElement.describe(arr, "vertex")]).write(str(path))
    with pytest.raises(PlyFormatError, match=r"points\.ply.*opacity"):
        GaussianModel.load_ply(path)


def test_ply_garbage_and_missing_file(tmp_path):
    bad = tmp_path / "bad.ply"
    bad.write_bytes(b"not a ply at all")
    with pytest.raises(PlyFormatError, match="bad.ply"):
        GaussianModel.load_ply(bad)
    with pytest.raises(FileNotFoundError, match="nope.ply"):
        GaussianModel.load_ply(tmp_path / "nope.ply")


def test_from_points_follows_3dgs_init():
    xyz = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]], dtype=np.float32)
    rgb = np.full((5, 3), 0.5, dtype=np.float32)
    m = GaussianModel.from_points(xyz, rgb, sh_degree=3)
    assert torch.allclose(m.opacities, torch.full((5,), 0.1), atol=1e-6)
    assert torch.allclose(m.params["sh0"], torch.zeros(5, 1, 3), atol=1e-6)
    assert m.params["shN"].shape == (5, 15, 3)
    assert torch.allclose(m.quats, torch.tensor([1.0, 0, 0, 0]).expand(5, 4))
    # origin: 3 nearest neighbours at distance 1 -> scale 1
    assert torch.allclose(m.scales[0], torch.ones(3), atol=1e-5)
