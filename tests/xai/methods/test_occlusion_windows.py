"""Occlusion's last window: ours (``clip=False``, a full window shifted to the end) and captum's
(``clip=True``, windows only at multiples of the stride, the last one cut at the end).

captum 0.9 ``Occlusion`` makes ``ceil((d - window) / stride) + 1`` windows at ``0, stride, ...``
and crops the last one where it passes the end (``_occlusion_mask`` pads with a negative
amount), so with ``stride <= window`` (which captum asserts) every feature is covered.
"""

from __future__ import annotations

import pytest
import torch
from captum.attr import Occlusion as CaptumOcclusion
from captum.testing.helpers.basic_models import BasicModel_ConvNet_One_Conv, BasicModel_MultiLayer

import xai
from xai.exceptions import InvalidParameterError
from xai.features.tensor import TensorFeatures


class _Flat(torch.nn.Module):
    """The conv model on 16 flattened pixels, so that captum's 1-D window is ours."""

    def __init__(self) -> None:
        super().__init__()
        self.net = BasicModel_ConvNet_One_Conv()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.reshape(-1, 1, 4, 4))


def _linear(w: list[float], bias: float = 0.5) -> torch.nn.Linear:
    lin = torch.nn.Linear(len(w), 1)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([w]))
        lin.bias.fill_(bias)
    return lin


def test_clip_matches_captum_on_the_multilayer_model_where_the_conventions_differ():
    # 3 features, window 2, stride 2: captum's windows are {0, 1} and {2} (cut at the end);
    # ours without clip are {0, 1} and {1, 2}.
    model = BasicModel_MultiLayer()
    x = torch.tensor([[1.0, -2.0, 3.0], [0.5, 4.0, -1.5], [2.0, 2.0, 2.0]])
    ref = CaptumOcclusion(model).attribute(x, sliding_window_shapes=(2,), strides=2,
                                           baselines=0.25, target=0)
    ours = xai.explain(model, x, method="occlusion", window=2, stride=2, clip=True,
                       baseline=0.25, target=0)
    torch.testing.assert_close(ours.values[:, 0], ref, rtol=0, atol=1e-5)
    other = xai.explain(model, x, method="occlusion", window=2, stride=2, baseline=0.25,
                        target=0)
    assert (other.values[:, 0] - ref).abs().max() > 0.1  # the case tells the conventions apart


@pytest.mark.parametrize(("window", "stride"), [(5, 3), (3, 2), (4, 4), (6, 5), (2, 1), (16, 3)])
def test_clip_matches_captum_on_the_conv_model(window, stride):
    # 16 pixels in row-major order: xai's features of a (1, 4, 4) image are its flattened
    # elements, captum slides a (window,) block over the same 16 values.
    x = torch.arange(32.0).reshape(2, 1, 4, 4) - 8
    model = xai.TorchModuleAdapter(BasicModel_ConvNet_One_Conv(), modality="image")
    ref = CaptumOcclusion(_Flat()).attribute(x.reshape(2, 16), sliding_window_shapes=(window,),
                                             strides=stride, baselines=1.0, target=1)
    ours = xai.explain(model, x, method="occlusion", window=window, stride=stride, clip=True,
                       baseline=1.0, target=1)
    assert ours.values.shape == (2, 1, 16)
    torch.testing.assert_close(ours.values[:, 0], ref, rtol=0, atol=1e-4)
    n_windows = -(-(16 - window) // stride) + 1  # captum's shift count
    assert int(ours.extras["n_rows"]) == 2 * (n_windows + 1)


def test_linear_model_closed_form_of_both_conventions():
    # f(x) = w.x + 0.5, x - b = 1 everywhere, so a window drops the sum of its weights.
    # 8 features, window 3, stride 2.
    # clip=False: windows {0,1,2}=6, {2,3,4}=12, {4,5,6}=18 and the extra {5,6,7}=21.
    # clip=True: {0,1,2}=6, {2,3,4}=12, {4,5,6}=18 and the cut {6,7}=15.
    model = _linear([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    x = torch.full((1, 8), 2.0)
    ours = xai.explain(model, x, method="occlusion", window=3, stride=2, baseline=1.0, target=0)
    expected = torch.tensor([6.0, 6.0, 9.0, 12.0, 15.0, 19.5, 19.5, 21.0])
    torch.testing.assert_close(ours.values[0, 0], expected, rtol=0, atol=1e-5)
    clipped = xai.explain(model, x, method="occlusion", window=3, stride=2, clip=True,
                          baseline=1.0, target=0)
    expected_clip = torch.tensor([6.0, 6.0, 9.0, 12.0, 15.0, 18.0, 16.5, 15.0])
    torch.testing.assert_close(clipped.values[0, 0], expected_clip, rtol=0, atol=1e-5)
    # 4 windows + the all-removed row either way; base_values is f(baseline) = 36 + 0.5
    assert int(ours.extras["n_rows"]) == int(clipped.extras["n_rows"]) == 5
    torch.testing.assert_close(clipped.base_values[0], torch.tensor([36.5]), rtol=0, atol=1e-5)


def test_linear_model_with_varied_inputs_is_the_window_average_of_the_terms():
    # Same windows as above, x - b not constant: term t_k = w_k (x_k - b_k), window drop = sum.
    w = [0.5, -1.0, 2.0, 1.5, -0.5, 3.0, 1.0, -2.0]
    x = torch.tensor([[1.0, 2.0, -1.0, 0.0, 4.0, 1.0, -3.0, 2.0]])
    t = torch.tensor(w) * (x[0] - 0.5)
    windows = {s: t[s:s + 3].sum() for s in (0, 2, 4, 5, 6)}  # windows[6] is the cut one
    ours = xai.explain(_linear(w), x, method="occlusion", window=3, stride=2, baseline=0.5,
                       target=0)
    expected = torch.stack([windows[0], windows[0], (windows[0] + windows[2]) / 2, windows[2],
                            (windows[2] + windows[4]) / 2, (windows[4] + windows[5]) / 2,
                            (windows[4] + windows[5]) / 2, windows[5]])
    torch.testing.assert_close(ours.values[0, 0], expected, rtol=0, atol=1e-5)
    clipped = xai.explain(_linear(w), x, method="occlusion", window=3, stride=2, clip=True,
                          baseline=0.5, target=0)
    expected_clip = torch.stack([windows[0], windows[0], (windows[0] + windows[2]) / 2,
                                 windows[2], (windows[2] + windows[4]) / 2, windows[4],
                                 (windows[4] + windows[6]) / 2, windows[6]])
    torch.testing.assert_close(clipped.values[0, 0], expected_clip, rtol=0, atol=1e-5)


def test_stride_past_the_window_leaves_gaps_at_zero_and_the_row_counts_differ():
    # 8 features, window 1, stride 3 (captum refuses stride > window). clip=True: windows at
    # 0, 3, 6 (3 rows + 1); clip=False adds the window at 7 (4 + 1). Uncovered features get 0.
    w = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    x = torch.full((2, 8), 3.0)
    clipped = xai.explain(_linear(w), x, method="occlusion", window=1, stride=3, clip=True,
                          baseline=1.0, target=0)
    ours = xai.explain(_linear(w), x, method="occlusion", window=1, stride=3, baseline=1.0,
                       target=0)
    two = torch.tensor(w) * 2
    torch.testing.assert_close(clipped.values[0, 0], two * torch.tensor([1.0, 0, 0, 1, 0, 0, 1, 0]),
                               rtol=0, atol=1e-5)
    torch.testing.assert_close(ours.values[0, 0], two * torch.tensor([1.0, 0, 0, 1, 0, 0, 1, 1]),
                               rtol=0, atol=1e-5)
    assert int(clipped.extras["n_rows"]) == 2 * 4
    assert int(ours.extras["n_rows"]) == 2 * 5
    with pytest.raises(AssertionError, match="Stride dimension"):
        CaptumOcclusion(_linear(w)).attribute(x, sliding_window_shapes=(1,), strides=3)


@pytest.mark.parametrize(("d", "window", "stride"), [(8, 3, 2), (8, 1, 3), (7, 3, 2), (5, 9, 2),
                                                     (16, 5, 3)])
@pytest.mark.parametrize("clip", [False, True])
def test_cost_estimate_counts_the_rows_explain_makes(d, window, stride, clip):
    x = torch.randn(3, d, generator=torch.Generator().manual_seed(0))
    method = xai.Occlusion(window=window, stride=stride, clip=clip, baseline=0.0)
    exp = xai.explain(_linear([1.0] * d), x, method=method, target=0)
    features = tuple(TensorFeatures(row, torch.zeros(d)) for row in x)
    assert method.cost(features, 1, 64, 4 * d).rows == int(exp.extras["n_rows"])


def test_clip_must_be_a_bool():
    with pytest.raises(InvalidParameterError, match="'clip' parameter of Occlusion must be a bool"
                       ) as info:
        xai.Occlusion(clip="yes")
    assert info.value.parameter == "clip"
