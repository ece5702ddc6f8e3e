"""The YUV attribute matrix of a GaussianModel and the grouped residual quantizer
(gs.codecs.attributes, gs.codecs.quantize)."""

import numpy as np
import torch

from codec_helpers import random_model

from gs.codecs.attributes import attribute_layout, attribute_matrix, model_from_attributes
from gs.codecs.quantize import group_levels, group_quantize, group_reconstruct


def test_colour_transform_round_trip():
    m = random_model(50, degree=2)
    back = model_from_attributes(m.means.detach().numpy(), attribute_matrix(m), 2)
    for k in ("sh0", "shN", "scales", "quats", "opacities"):
        assert torch.allclose(back.params[k], m.params[k], atol=1e-5), k


def test_grouped_quantizer_stays_within_half_a_step():
    rng = np.random.default_rng(0)
    groups = [("a", slice(0, 3), 8), ("b", slice(3, 5), 4)]
    r = rng.normal(0, 1, (500, 5))
    q, lo, hi = group_quantize(r, groups)
    assert np.array_equal(group_levels(groups), [255, 255, 255, 15, 15])
    assert q.min() == 0 and q[:, :3].max() == 255 and q[:, 3:].max() == 15
    rec = group_reconstruct(np.zeros_like(r, dtype=np.float32), q, lo, hi, groups)
    step = np.array([(hi[0] - lo[0]) / 255] * 3 + [(hi[1] - lo[1]) / 15] * 2)
    assert np.all(np.abs(rec - r) <= step / 2 + 1e-5)
    assert attribute_layout(0)["rest_y"] == slice(3, 3)
