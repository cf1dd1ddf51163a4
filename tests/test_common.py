"""The conformance suite (xai.testing) over every registered method, and its own self-tests."""

from __future__ import annotations

import dataclasses
import inspect
import re
from typing import Any

import pytest
import torch

import xai
from xai import METHODS
from xai.methods import Occlusion, ShapleySampling
from xai.testing import (
    NO_CAPABILITY,
    adapter_fixtures,
    check_batch_invariance,
    check_incompatible_adapter,
    check_invalid_params,
    check_model_untouched,
    check_seed,
    iter_checks,
    parametrize_with_checks,
)


@parametrize_with_checks()
def test_method_conforms(check):
    check()


@pytest.mark.parametrize("name", METHODS.names())
def test_module_name_equals_registry_name(name):
    cls = METHODS.get(name)
    assert cls.__module__ == f"xai.methods.{name}" or cls.__module__.endswith(f".{name}")
    assert cls.name == name


@pytest.mark.parametrize("name", METHODS.names())
def test_docstring_is_numpydoc_with_references(name):
    cls = METHODS.get(name)
    doc = inspect.getdoc(cls) or ""
    assert "\nParameters\n----------\n" in doc, f"{cls.__name__} has no Parameters section"
    assert "\nReferences\n----------\n" in doc, f"{cls.__name__} has no References section"
    refs = doc.split("\nReferences\n----------\n", 1)[1]
    assert re.search(r"\.\. \[1\] \S", refs), f"{cls.__name__}: References has no '.. [1]' entry"
    documented = set(re.findall(r"^(\w+) :", doc, flags=re.MULTILINE))
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    assert fields <= documented, f"{cls.__name__} does not document {sorted(fields - documented)}"


# -- the suite itself --------------------------------------------------------------------------

def _fixture(name: str) -> Any:
    return next(fx for fx in adapter_fixtures() if fx.name == name)


def test_suite_picks_up_methods_registered_later():
    with METHODS.scoped():

        @xai.register_method("late_occlusion")
        @dataclasses.dataclass(frozen=True, kw_only=True)
        class LateOcclusion(Occlusion):
            pass

        ids = [i for i, _ in iter_checks()]
    assert "late_occlusion()-torch_mlp-check_seed" in ids
    assert "late_occlusion()-check_invalid_params" in ids
    assert "late_occlusion" not in METHODS  # scoped() undid the registration
    assert not any(i.startswith("late_occlusion") for i, _ in iter_checks())


def test_suite_skips_incompatible_fixtures():
    ids = [i for i, _ in iter_checks(["integrated_gradients"])]
    assert "integrated_gradients(n_steps=8)-callable-check_incompatible_adapter" in ids
    assert "integrated_gradients(n_steps=8)-callable-check_seed" not in ids
    assert "integrated_gradients(n_steps=8)-torch_mlp-check_seed" in ids
    # every method also meets an adapter with no capabilities at all
    occ = [i for i, _ in iter_checks(["occlusion"])]
    assert "occlusion()-no_capability-check_incompatible_adapter" in occ
    assert "occlusion()-callable-check_model_untouched" not in occ  # no torch module there


def test_parametrize_with_checks_ids_match_iter_checks():
    mark = parametrize_with_checks(["occlusion"])
    assert mark.args[0] == "check"
    assert [p.id for p in mark.args[1]] == [i for i, _ in iter_checks(["occlusion"])]


def test_check_model_untouched_catches_a_leaked_hook():
    with METHODS.scoped():

        @xai.register_method("leaky")
        @dataclasses.dataclass(frozen=True, kw_only=True)
        class Leaky(Occlusion):
            def _attribute(self, adapter, batch, features, target, **kwargs):
                adapter.model.register_forward_hook(lambda *a: None)
                return super()._attribute(adapter, batch, features, target, **kwargs)

        fx = _fixture("torch_mlp")
        try:
            with pytest.raises(AssertionError, match="hooks left on the model"):
                check_model_untouched(Leaky, {}, fx)
        finally:
            for m in fx.module.modules():
                m._forward_hooks.clear()


def test_check_model_untouched_catches_modified_parameters():
    with METHODS.scoped():

        @xai.register_method("mutator")
        @dataclasses.dataclass(frozen=True, kw_only=True)
        class Mutator(Occlusion):
            def _attribute(self, adapter, batch, features, target, **kwargs):
                with torch.no_grad():
                    adapter.model[0].bias[0] += 1.0
                return super()._attribute(adapter, batch, features, target, **kwargs)

        fx = _fixture("torch_mlp")
        bias = fx.module[0].bias.detach().clone()
        try:
            with pytest.raises(AssertionError, match="parameter or buffer '0.bias' changed"):
                check_model_untouched(Mutator, {}, fx)
        finally:
            with torch.no_grad():
                fx.module[0].bias.copy_(bias)


def test_check_seed_catches_a_method_that_ignores_the_seed():
    with METHODS.scoped():

        @xai.register_method("global_rng")
        @dataclasses.dataclass(frozen=True, kw_only=True)
        class GlobalRng(ShapleySampling):
            def _attribute(self, adapter, batch, features, target, *, batch_size, rng):
                return super()._attribute(adapter, batch, features, target,
                                          batch_size=batch_size, rng=torch.default_generator)

        with pytest.raises(AssertionError, match="global RNG state changed"):
            check_seed(GlobalRng, {"n_permutations": 4}, _fixture("torch_mlp"))


def test_check_batch_invariance_catches_batch_dependent_values():
    with METHODS.scoped():

        @xai.register_method("batchy")
        @dataclasses.dataclass(frozen=True, kw_only=True)
        class Batchy(Occlusion):
            def _attribute(self, adapter, batch, features, target, **kwargs):
                out = super()._attribute(adapter, batch, features, target, **kwargs)
                out.values = [v * len(batch) for v in out.values]
                return out

        with pytest.raises(AssertionError, match="row 0"):
            check_batch_invariance(Batchy, {}, _fixture("torch_mlp"))


def test_check_invalid_params_catches_a_constraint_on_a_non_field():
    with METHODS.scoped():

        @xai.register_method("typo")
        @dataclasses.dataclass(frozen=True, kw_only=True)
        class Typo(Occlusion):
            _constraints = {**Occlusion._constraints, "windwo": []}

            def __post_init__(self) -> None:
                pass

        with pytest.raises(AssertionError, match=re.escape("non-fields ['windwo']")):
            check_invalid_params(Typo, {})


def test_suite_checks_that_every_field_has_a_constraint():
    ids = [i for i, _ in iter_checks(["occlusion"])]
    assert ids[0] == "occlusion-check_constraints_cover_fields"
    with METHODS.scoped():

        @xai.register_method("unchecked_field")
        @dataclasses.dataclass(frozen=True, kw_only=True)
        class UncheckedField(Occlusion):
            radius: float = 1.0

        check = dict(iter_checks(["unchecked_field"]))["unchecked_field-check_constraints_cover_fields"]
        msg = ("UncheckedField._constraints has no entry for the field(s) ['radius']: declare the "
               "accepted values of each (xai.extend constraints).")
        with pytest.raises(AssertionError, match=re.escape(msg)):
            check()


@pytest.mark.parametrize(("cls", "name", "value", "expected"), [
    (Occlusion, "baseline", "zero", "a str among {'auto', 'delete', 'mask', 'mean', 'pad', "
                                    "'unk', 'zeros'}, a number or an array-like"),
    (ShapleySampling, "baseline", "zero", "a str among {'auto', 'delete', 'mask', 'mean', 'pad', "
                                          "'unk', 'zeros'}, a number or an array-like"),
    (xai.KernelShap, "baseline", None, "a str among {'auto', 'delete', 'mask', 'mean', 'pad', "
                                       "'unk', 'zeros'}, a number or an array-like"),
    (xai.OLM, "resampler", "bert-base-uncased",
     "a TokenResampler (an object with propose(text, spans)), such as "
     "xai.MaskedLMResampler(model, tokenizer)"),
])
def test_fields_that_had_no_constraint_are_checked_when_the_method_is_made(cls, name, value,
                                                                            expected):
    # before: baseline was accepted by the constructor and refused only inside explain()
    msg = f"The {name!r} parameter of {cls.__name__} must be {expected}. Got {value!r} instead."
    with pytest.raises(xai.InvalidParameterError, match=re.escape(msg)) as err:
        cls(**{name: value})
    assert err.value.parameter == name


def test_check_incompatible_adapter_catches_a_method_that_accepts_anything():
    with METHODS.scoped():

        @xai.register_method("permissive")
        @dataclasses.dataclass(frozen=True, kw_only=True)
        class Permissive(Occlusion):
            def check_compatible(self, adapter):
                pass

        with pytest.raises(AssertionError, match="must not be called"):
            check_incompatible_adapter(Permissive, {}, NO_CAPABILITY)
