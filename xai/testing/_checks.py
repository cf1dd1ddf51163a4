"""The checks of the conformance suite (DESIGN "Tests", items 1-7)."""

from __future__ import annotations

import dataclasses
import functools
import random
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch

from .._explain import compatible_methods, explain, make_method
from .._registry import METHODS
from .._validation import required_fields
from ..exceptions import ConvergenceWarning, IncompatibleModelError, InvalidParameterError
from ..explanation import Explanation
from ..methods._base import Method
from ._coverage import check_constraints_cover_fields
from ._params import params_for
from ._toys import _NOT_CALLED, NO_CAPABILITY, AdapterFixture, adapter_fixtures, toy_inputs  # noqa: F401

# -- checks ------------------------------------------------------------------------------------

def _run(method: Method, fx: AdapterFixture, inputs: Any = None, *, random_state: Any = 0,
         batch_size: int | Literal["auto"] = "auto") -> Explanation:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return method.explain(fx.model, fx.inputs if inputs is None else inputs, target=fx.target,
                              batch_size=batch_size, random_state=random_state)


def _where(cls: type[Method], params: Mapping[str, Any], fx: AdapterFixture | None) -> str:
    on = f" on {fx.name}" if fx is not None else ""
    return f"{cls.__name__}({_kwargs(params)}){on}"


def _prefixed(where: str) -> Callable[[str], str]:
    """A ``msg`` callable for ``torch.testing.assert_close`` that says which case failed."""
    return lambda message: f"{where}: {message}"


def _kwargs(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in params.items())


def check_explanation_shape(cls: type[Method], params: Mapping[str, Any],
                           fx: AdapterFixture) -> None:
    """Values are finite float32 (n, n_outputs, n_features) and method/params round-trip."""
    method = cls(**params)
    exp = _run(method, fx)
    where = _where(cls, params, fx)
    widths = [f.n_features for f in exp.features]
    n = len(fx.inputs)
    assert len(widths) == n, f"{where}: {len(widths)} feature spaces for {n} examples"
    expected = (n, fx.n_outputs, max(widths))
    assert tuple(exp.values.shape) == expected, f"{where}: values {tuple(exp.values.shape)}, " \
        f"expected {expected}"
    assert exp.values.dtype == torch.float32, f"{where}: values are {exp.values.dtype}"
    assert bool(torch.isfinite(exp.values).all()), f"{where}: non-finite values"
    if exp.feature_mask is not None:
        assert exp.feature_mask.sum(1).tolist() == widths, f"{where}: feature_mask != widths"
        assert bool((exp.values[~exp.feature_mask.unsqueeze(1).expand_as(exp.values)] == 0).all())
    assert exp.method == cls.name, f"{where}: method {exp.method!r} != {cls.name!r}"
    rebuilt = METHODS.get(exp.method)(**exp.params)
    assert rebuilt == method, f"{where}: METHODS.get(method)(**params) gives {rebuilt!r}"


def _global_rng_state() -> tuple[Any, ...]:
    np_state: Any = np.random.get_state()  # noqa: NPY002  (checking the legacy global state itself)
    return torch.get_rng_state(), np_state[0], np_state[1].copy(), np_state[2:], random.getstate()


def _same_rng_state(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    return (torch.equal(a[0], b[0]) and a[1] == b[1] and np.array_equal(a[2], b[2])
            and a[3] == b[3] and a[4] == b[4])


def check_seed(cls: type[Method], params: Mapping[str, Any],
              fx: AdapterFixture) -> None:
    """Same random_state, same values; other seeds differ iff the method is non-deterministic.

    Also: an int seed equals a ``torch.Generator`` seeded alike, and the global torch, numpy and
    Python RNG states are left untouched.
    """
    method, where = cls(**params), _where(cls, params, fx)
    before = _global_rng_state()
    a = _run(method, fx, random_state=0).values
    b = _run(method, fx, random_state=0).values
    g = _run(method, fx, random_state=torch.Generator().manual_seed(0)).values
    c = _run(method, fx, random_state=1).values
    assert _same_rng_state(before, _global_rng_state()), f"{where}: global RNG state changed"
    torch.testing.assert_close(b, a, rtol=0, atol=0, msg=_prefixed(f"{where}: same seed"))
    torch.testing.assert_close(g, a, rtol=0, atol=0,
                               msg=_prefixed(f"{where}: seed 0 vs Generator(0)"))
    if cls.deterministic:  # no randomness: the seed must not matter
        torch.testing.assert_close(c, a, rtol=0, atol=0,
                                   msg=_prefixed(f"{where}: deterministic but seed-dependent"))
    else:
        assert not torch.equal(a, c), f"{where}: non-deterministic but seeds 0 and 1 agree"


def check_batch_invariance(cls: type[Method], params: Mapping[str, Any],
                          fx: AdapterFixture) -> None:
    """Explaining a batch equals explaining each row alone (with another batch_size)."""
    method, where = cls(**params), _where(cls, params, fx)
    whole = _run(method, fx)
    for i, row in enumerate(fx.rows()):
        alone = _run(method, fx, row, batch_size=3)
        width = int(alone.values.shape[-1])
        torch.testing.assert_close(whole.values[i, :, :width], alone.values[0], rtol=fx.rtol,
                                   atol=fx.atol, msg=_prefixed(f"{where}, row {i}"))
        assert bool((whole.values[i, :, width:] == 0).all()), f"{where}: padding is not 0"
        if whole.base_values is not None and alone.base_values is not None:
            torch.testing.assert_close(whole.base_values[i], alone.base_values[0], rtol=fx.rtol,
                                       atol=fx.atol, msg=_prefixed(f"{where}: base_values"))


class _InjectedError(Exception):
    """Raised from inside the model by check_model_untouched."""


_INJECTED = "injected by check_model_untouched"


_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


def _module_state(module: torch.nn.Module) -> dict[str, Any]:
    from torch.nn.modules import module as torch_module

    return {
        "tensors": {k: v.detach().clone() for k, v in module.state_dict().items()},
        "grads": [(p.requires_grad, p.grad is None) for p in module.parameters()],
        "training": [m.training for m in module.modules()],
        "hooks": [tuple(tuple(getattr(m, h)) for h in _HOOK_DICTS) for m in module.modules()],
        "global_hooks": tuple(len(getattr(torch_module, h)) for h in (
            "_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks")),
    }


def _assert_same_state(module: torch.nn.Module, before: dict[str, Any], where: str) -> None:
    after = _module_state(module)
    for key in before["tensors"]:
        assert torch.equal(before["tensors"][key], after["tensors"][key]), \
            f"{where}: parameter or buffer {key!r} changed"
    assert after["grads"] == before["grads"], f"{where}: requires_grad or .grad changed"
    assert after["training"] == before["training"], f"{where}: training flags not restored"
    assert after["hooks"] == before["hooks"], f"{where}: hooks left on the model"
    assert after["global_hooks"] == before["global_hooks"], f"{where}: global module hooks left"


def check_model_untouched(cls: type[Method], params: Mapping[str, Any],
                         fx: AdapterFixture) -> None:
    """No hooks left, parameters and training flags as before, also when ``_attribute`` raises.

    The raising case arms the model's last leaf module to raise once ``_attribute`` has started,
    so the error comes from inside a forward pass with the method's hooks attached.
    """
    module, where = fx.module, _where(cls, params, fx)
    if module is None:
        msg = f"check_model_untouched needs a torch module; {fx.name} has none."
        raise ValueError(msg)
    flags = [(m, m.training) for m in module.modules()]
    inputs = fx.inputs
    leaf = [m for m in module.modules() if not list(m.children())][-1]
    armed = {"on": False}
    original_forward = leaf.forward

    def forward(*args: Any, **kwargs: Any) -> Any:
        if armed["on"]:
            raise _InjectedError(_INJECTED)
        return original_forward(*args, **kwargs)

    class Armed(cls):  # type: ignore[misc,valid-type]  # a subclass built on the fly
        def _attribute(self, *args: Any, **kwargs: Any) -> Any:
            armed["on"] = True
            return super()._attribute(*args, **kwargs)

    Armed.__name__ = Armed.__qualname__ = cls.__name__
    try:
        module.train()
        before = _module_state(module)
        _run(cls(**params), fx, inputs)
        _assert_same_state(module, before, f"{where}, after explain")
        if isinstance(inputs, np.ndarray):
            assert np.array_equal(inputs, fx.inputs), f"{where}: the inputs were modified"
        leaf.forward = forward
        try:
            _caught(_InjectedError, lambda: _run(Armed(**params), fx),
                    f"{where} (with an error injected in {type(leaf).__name__}.forward)")
        finally:
            del leaf.forward
        _assert_same_state(module, before, f"{where}, after _attribute raised")
    finally:
        for m, flag in flags:
            m.training = flag


def _caught(exc_type: type[Exception], call: Callable[[], Any], where: str) -> Any:
    """The ``exc_type`` error that ``call()`` raises; AssertionError if it raises none."""
    try:
        call()
    except exc_type as err:
        return err
    msg = f"{where} did not raise {exc_type.__name__}"
    raise AssertionError(msg)


def _invalid_values(constraints: Sequence[Any]) -> list[Any]:
    """Each constraint's invalid value, unless another accepted kind of value allows it."""
    values = [c.invalid_value() for c in constraints]
    return [v for v in values if not any(o.is_satisfied_by(v) for o in constraints)]


def check_each_constraint_refuses(cls: Any, params: Mapping[str, Any]) -> None:
    """Building ``cls`` with each constraint's invalid value (the rest from ``params``) raises
    InvalidParameterError naming that parameter: shared by the method and metric suites."""
    for name, constraints in cls._constraints.items():
        for bad in _invalid_values(constraints):
            where = f"{cls.__name__}({_kwargs({**params, name: bad})})"
            err = _caught(InvalidParameterError,
                          functools.partial(cls, **{**params, name: bad}), where)
            assert err.parameter == name, f"{where}: error names {err.parameter!r}, not {name!r}"
            assert f"'{name}'" in str(err), f"{where}: message does not name {name!r}: {err}"


def check_invalid_params(cls: type[Method], params: Mapping[str, Any],
                         fx: AdapterFixture | None = None) -> None:
    """Each constraint's invalid value, and each missing required field, raises
    InvalidParameterError naming the parameter."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(cls._constraints) - set(fields))
    assert not unknown, f"{cls.__name__}._constraints names non-fields {unknown}"
    check_each_constraint_refuses(cls, params)
    for name in required_fields(cls):
        rest = {k: v for k, v in params.items() if k != name}
        err = _caught(InvalidParameterError, functools.partial(make_method, cls.name, rest),
                      f"{cls.__name__} without {name!r}")
        assert err.parameter == name, f"{cls.__name__}: missing {name!r} not named"


def check_incompatible_adapter(cls: type[Method], params: Mapping[str, Any],
                              fx: AdapterFixture) -> None:
    """An adapter lacking a required capability or the modality raises IncompatibleModelError,
    through ``Method.explain`` and ``xai.explain`` alike, and lists what works instead."""
    where = _where(cls, params, fx)
    works = ", ".join(compatible_methods(fx.adapter())) or "none"
    calls = [lambda: _run(cls(**params), fx)]
    if "method" not in params:  # a field named "method" can only travel in an instance
        calls.append(lambda: explain(fx.model, fx.inputs, method=cls.name, **params))
    for call in calls:
        err = _caught(IncompatibleModelError, call, where)
        assert f"'{cls.name}'" in str(err), f"{where}: message does not name the method: {err}"
        assert str(err).endswith(f"Methods that work with this model: {works}."), \
            f"{where}: message does not list the compatible methods: {err}"


def check_explain_equivalence(cls: type[Method], params: Mapping[str, Any],
                             fx: AdapterFixture) -> None:
    """``xai.explain(model, x, method=name, **params)`` equals ``cls(**params).explain(model, x)``,
    for the registry name, each alias, and a Method instance."""
    where = _where(cls, params, fx)
    direct = _run(cls(**params), fx)
    calls: list[tuple[str, Any, Mapping[str, Any]]] = [
        (n, n, params) for n in (cls.name, *METHODS.aliases(cls.name))
        if "method" not in params]  # a field named "method" can only travel in an instance
    calls.append(("instance", cls(**params), {}))
    for label, method, kwargs in calls:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            via = explain(fx.model, fx.inputs, method=method, target=fx.target, random_state=0,
                          **kwargs)
        assert via.method == cls.name, f"{where}: explain(method={label!r}) gave {via.method!r}"
        assert dict(via.params) == dict(direct.params), f"{where}: params differ via {label!r}"
        torch.testing.assert_close(via.values, direct.values, rtol=0, atol=0,
                                   msg=_prefixed(f"{where}, method={label!r}"))


Check = Callable[[type[Method], Mapping[str, Any], AdapterFixture], None]

#: Checks run on every compatible fixture (check_model_untouched only where there is a module).
CHECKS: tuple[Check, ...] = (check_explanation_shape, check_seed, check_batch_invariance,
                             check_model_untouched, check_explain_equivalence)


def iter_checks(names: Iterable[str] | None = None) -> Iterator[tuple[str, Callable[[], None]]]:
    """``(id, check)`` pairs over methods x :func:`params_for` x fixtures x checks.

    ``names`` defaults to every registered method (``METHODS.names()`` at call time), so methods
    registered later are picked up. A fixture a method cannot explain gets only
    :func:`check_incompatible_adapter`; so does an adapter with no capabilities at all.
    """
    fixtures = adapter_fixtures()
    for name in METHODS.names() if names is None else names:
        cls: type[Method] = METHODS.get(name)
        yield f"{cls.name}-check_constraints_cover_fields", functools.partial(
            check_constraints_cover_fields, cls)
        for params in params_for(cls):
            pid = f"{cls.name}({_kwargs(params)})"
            yield f"{pid}-check_invalid_params", functools.partial(
                check_invalid_params, cls, params)
            for fx in (*fixtures, NO_CAPABILITY):
                if cls.name not in compatible_methods(fx.adapter()):
                    checks: Sequence[Check] = (check_incompatible_adapter,)
                else:
                    checks = [c for c in CHECKS
                              if c is not check_model_untouched or fx.module is not None]
                for check in checks:
                    yield f"{pid}-{fx.name}-{check.__name__}", functools.partial(
                        check, cls, params, fx)


def parametrize_with_checks(names: Iterable[str] | None = None) -> Any:
    """A ``pytest.mark.parametrize("check", ...)`` over :func:`iter_checks`.

    Examples
    --------
    >>> from xai.testing import parametrize_with_checks
    >>> @parametrize_with_checks(["occlusion"])
    ... def test_occlusion_conforms(check):
    ...     check()
    """
    import pytest

    cases = list(iter_checks(names))
    return pytest.mark.parametrize("check", [pytest.param(c, id=i) for i, c in cases])


def check_method(name: str) -> None:
    """Run every check for the registered method ``name``; the first failure raises."""
    for _, check in iter_checks([name]):
        check()

