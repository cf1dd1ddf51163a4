"""Every adapter checks what the model returns on every call, with the same message for torch
modules and plain functions: the rows, the finiteness, and the number of outputs (a model whose
width depends on the batch would otherwise fail later as an IndexError deep in torch)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import xai

X = torch.tensor([[1.0, -1.0, 0.5, 2.0], [0.0, 2.0, -1.0, 1.0], [3.0, 0.5, 0.5, -2.0]])
METHODS = ["occlusion", "shapley_sampling", "kernel_shap", "lime"]


class NarrowOnPerturbations(torch.nn.Module):
    """Two outputs at the 3 inputs, one on any other batch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :2] if x.shape[0] == 3 else x[:, :1]


def narrow(z: np.ndarray) -> np.ndarray:
    return z[:, :2] if z.shape[0] == 3 else z[:, :1]


@pytest.mark.parametrize("method", [*METHODS, "integrated_gradients"])
def test_a_module_that_changes_its_number_of_outputs_is_named(method):
    with pytest.raises(xai.InvalidInputError, match=re.escape(
            "NarrowOnPerturbations returned 1 output column(s) for a batch of ")) as err:
        xai.explain(NarrowOnPerturbations(), X, method=method, target=1)
    assert str(err.value).endswith("rows, but 2 on earlier calls. The module must return the "
                                   "same outputs, shape (n_rows, n_outputs), for every batch.")


@pytest.mark.parametrize("method", METHODS)
def test_a_function_that_changes_its_number_of_outputs_gets_the_same_message(method):
    with pytest.raises(xai.InvalidInputError, match=re.escape(
            "narrow returned 1 output column(s) for a batch of ")) as err:
        xai.explain(narrow, X.numpy(), method=method, target=1)
    assert str(err.value).endswith("rows, but 2 on earlier calls. The function must return "
                                   "the same outputs, shape (n_rows, n_outputs), for every "
                                   "batch.")


@pytest.mark.parametrize("wrap", ["module", "function"])
def test_wrong_rows_on_perturbed_batches_are_named_for_modules_and_functions(wrap):
    model = (lambda z: z[:3, :2]) if wrap == "function" else _FirstThree()
    name = "<lambda>" if wrap == "function" else "_FirstThree"
    inputs = X.numpy() if wrap == "function" else X
    with pytest.raises(xai.InvalidInputError, match=re.escape(
            f"{name} returned 3 rows for 15 inputs. The {wrap} must return one row of scores "
            "per input row.")):
        xai.explain(model, inputs, method="occlusion", target=0)


class _FirstThree(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:3, :2]


def test_a_steady_model_is_untouched_by_the_check():
    model = torch.nn.Linear(4, 2)
    a = xai.explain(model, X, method="occlusion", target=1)
    torch.testing.assert_close(a.values.sum(-1), a.predictions - a.base_values, rtol=1e-5,
                               atol=1e-5)
