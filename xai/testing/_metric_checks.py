"""The conformance suite every evaluation metric must pass (metrics' counterpart of the method
checks): stateless, seeded, invalid parameters, row-vs-batch invariance and direction.

``xai`` never imports ``metrics``: each check takes a metric class or instance, and
:func:`iter_metric_checks` takes the registry to walk (``metrics.METRICS`` or a third party's).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol

import torch

from .._explain import explain
from ..exceptions import XAIWarning
from ..explanation import Explanation
from ._checks import (
    _global_rng_state,
    _kwargs,
    _same_rng_state,
    check_each_constraint_refuses,
)
from ._coverage import check_constraints_cover_fields
from ._toys import tiny_text_classifier

__all__ = [
    "METRIC_CHECKS",
    "MetricFixture",
    "check_metric_after_load",
    "check_metric_batch_invariance",
    "check_metric_direction",
    "check_metric_invalid_params",
    "check_metric_seed",
    "check_metric_stateless",
    "iter_metric_checks",
    "metric_fixtures",
    "parametrize_with_metric_checks",
]


class _Registry(Protocol):
    def names(self) -> list[str]: ...

    def get(self, name: str) -> Any: ...


# -- fixtures ----------------------------------------------------------------------------------

#: Weights of the linear fixtures: distinct magnitudes and both signs, so that a ranking by
#: attribution is unambiguous and a shuffled one is wrong.
_W = torch.tensor([3.0, -2.0, 1.5, -1.0, 0.5, 2.5])


class _Logistic(torch.nn.Module):
    """(1 - p, p) with p = sigmoid(x @ w): probability outputs, for metrics that need them."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(6, 1, bias=False)
        with torch.no_grad():
            self.linear.weight.copy_(_W[None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = torch.sigmoid(self.linear(x))
        return torch.cat([1 - p, p], 1)


def _linear_model() -> torch.nn.Module:
    model = torch.nn.Linear(6, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(_W[None])
    return model


def _exact(model: torch.nn.Module, target: int) -> tuple[Any, Explanation]:
    """The model and its exact attributions on 5 rows: w * (x - 0), the closed form of occlusion
    (and of integrated gradients) for a model linear in x, written over an occlusion run."""
    x = torch.randn(5, 6, generator=torch.Generator().manual_seed(3))
    exp = explain(model, x, method="occlusion", baseline="zeros", target=target)
    values = (_W * x)[:, None, :]
    return model, dataclasses.replace(exp, values=values.float())


def _text() -> tuple[Any, Explanation]:
    model, tokenizer = tiny_text_classifier()
    texts = ["the movie was great", "a bad movie , the end"]
    return (model, tokenizer), explain((model, tokenizer), texts, method="occlusion", target=0)


class _MotifCounter(torch.nn.Module):
    """A graph classifier that reads only its motif: p = sigmoid(c / 2 - 3.5) with c the
    directed edges between motif nodes (node feature 0 is 1 on the motif), so class 1 needs all
    4 motif edges (c = 8) and any edge outside the motif does nothing. Returns (1 - p, p)."""

    def __init__(self) -> None:
        super().__init__()
        from torch_geometric.nn import SimpleConv

        self.conv = SimpleConv(aggr="sum")

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor,
                batch: torch.Tensor | None = None) -> torch.Tensor:
        from torch_geometric.nn import global_add_pool

        flag = x[:, :1]
        c = global_add_pool(flag * self.conv(flag, edge_index), batch)
        p = torch.sigmoid(c / 2 - 3.5)
        return torch.cat([1 - p, p], 1)


def _graph() -> tuple[Any, Explanation]:
    """Three graphs, each a 4-node motif ring plus other edges, explained over their edges by
    the motif's mask: 1 on the 4 motif edges, 0 elsewhere (the exact explanation of a model
    that reads only the motif)."""
    from torch_geometric.data import Data
    from torch_geometric.utils import to_undirected

    graphs = []
    for g, n in enumerate((7, 8, 9)):
        ring = [(k, (k + 1) % 4) for k in range(4)]
        rest = [(k, k + 1) for k in range(3, n - 1)] + [(n - 1, 0), (1, n - 2 - g % 2)]
        edges = to_undirected(torch.tensor(ring + rest).T, num_nodes=n)
        x = torch.zeros(n, 2)
        x[:4, 0] = 1.0
        x[:, 1] = torch.arange(n) / n
        graphs.append(Data(x=x, edge_index=edges))
    model = _MotifCounter()
    exp = explain(model, graphs, method="occlusion", target=1)
    values = torch.zeros_like(exp.values)
    for i, fs in enumerate(exp.features):
        ends = fs.row.unit_edges()  # type: ignore[attr-defined]  # GraphEdges
        values[i, 0, :fs.n_features] = ((ends < 4).all(1)).float()
    return model, dataclasses.replace(exp, values=values)


@functools.cache
def _built(make: Callable[[], tuple[Any, Explanation]]) -> tuple[Any, Explanation]:
    return make()


@dataclasses.dataclass(frozen=True)
class MetricFixture:
    """A model and an explanation of it on which the metric checks run.

    Parameters
    ----------
    name : str
    make : callable
        Returns ``(model, explanation)``; called once and cached.
    exact : bool
        Whether the explanation's values are the model's exact attributions, so that
        :func:`check_metric_direction` applies.
    atol, rtol : float
        Tolerances of the row-vs-batch check (text rows alone are padded differently).
    """

    name: str
    make: Callable[[], tuple[Any, Explanation]]
    exact: bool = False
    atol: float = 1e-5
    rtol: float = 1e-5

    @property
    def model(self) -> Any:
        return _built(self.make)[0]

    @property
    def explanation(self) -> Explanation:
        return _built(self.make)[1]

    @property
    def shuffled(self) -> Explanation:
        """The explanation with each row's values rolled by one feature: the same values on the
        wrong features (every feature moves, so no attribution stays in place)."""
        exp = self.explanation
        return dataclasses.replace(exp, values=exp.values.roll(1, dims=-1))


def metric_fixtures() -> tuple[MetricFixture, ...]:
    """A linear regressor and a logistic classifier with exact attributions, a tiny BERT
    classifier explained by occlusion when transformers is installed, and a graph classifier
    that reads only a motif, explained by the motif's mask, when torch_geometric is."""
    out = [MetricFixture("linear", functools.partial(_exact, _linear_model(), 0), exact=True),
           MetricFixture("logistic", functools.partial(_exact, _Logistic(), 1), exact=True)]
    try:
        import tokenizers  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        return tuple(out)
    # 1e-3: with transformers 5.25 a row scored alone and padded in a batch differ by a few
    # 1e-5 in BERT's outputs, which the sensitivity metrics' normalisation amplifies to ~3e-4
    out.append(MetricFixture("text_bert", _text, atol=1e-3, rtol=1e-3))
    try:
        import torch_geometric  # noqa: F401
    except ImportError:
        return tuple(out)
    out.append(MetricFixture("graph_motif", _graph, exact=True))
    return tuple(out)


# -- checks ------------------------------------------------------------------------------------

def _score(metric: Any, exp: Explanation, model: Any, random_state: Any = 0) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", XAIWarning)
        scores: torch.Tensor = metric(exp, model, random_state=random_state).scores
    return scores


def _same(a: torch.Tensor, b: torch.Tensor, where: str, *, rtol: float = 0,
          atol: float = 0) -> None:
    torch.testing.assert_close(a, b, rtol=rtol, atol=atol, equal_nan=True,
                               msg=lambda m: f"{where}: {m}")


def check_metric_invalid_params(cls: Any, params: Mapping[str, Any]) -> None:
    """Every field has a constraint, and each constraint's invalid value raises
    InvalidParameterError naming the parameter (the method suite's generator of values)."""
    check_constraints_cover_fields(cls)
    check_each_constraint_refuses(cls, params)


def check_metric_stateless(metric: Any, fx: MetricFixture) -> None:
    """A frozen dataclass; two calls give the same scores and leave the metric and the
    explanation as they were."""
    where = f"{metric!r} on {fx.name}"
    params = type(metric).__dataclass_params__
    assert params.frozen, f"{where}: {type(metric).__name__} is not a frozen dataclass"
    before, exp = copy.deepcopy(metric), fx.shuffled
    values = exp.values.clone()
    first = _score(metric, exp, fx.model)
    second = _score(metric, exp, fx.model)
    _same(second, first, f"{where}, second call")
    assert metric == before, f"{where}: the metric changed during a call"
    assert torch.equal(exp.values, values), f"{where}: the explanation's values changed"


def check_metric_seed(metric: Any, fx: MetricFixture, *, deterministic: bool | None = None) -> None:
    """Same random_state, same scores (an int seed equals a Generator seeded alike); the global
    RNGs are untouched. ``deterministic`` (default: the class's ``deterministic`` attribute, when
    it has one): True means seeds 0 and 1 agree, False that they differ."""
    where = f"{metric!r} on {fx.name}"
    if deterministic is None:
        deterministic = getattr(type(metric), "deterministic", None)
    exp, rng = fx.shuffled, _global_rng_state()
    a = _score(metric, exp, fx.model, 0)
    _same(_score(metric, exp, fx.model, 0), a, f"{where}, same seed")
    _same(_score(metric, exp, fx.model, torch.Generator().manual_seed(0)), a,
          f"{where}, seed 0 vs Generator(0)")
    c = _score(metric, exp, fx.model, 1)
    assert _same_rng_state(rng, _global_rng_state()), f"{where}: global RNG state changed"
    if deterministic:
        _same(c, a, f"{where}: deterministic but seed-dependent")
    elif deterministic is False:
        assert not torch.equal(a, c), f"{where}: random but seeds 0 and 1 agree"


def check_metric_batch_invariance(metric: Any, fx: MetricFixture) -> None:
    """Scoring a batch equals scoring each row alone (per-example generators make random
    draws independent of the batch)."""
    where, exp = f"{metric!r} on {fx.name}", fx.shuffled
    whole = _score(metric, exp, fx.model)
    for i in range(len(exp)):
        alone = _score(metric, exp[i:i + 1], fx.model)
        _same(alone[0], whole[i], f"{where}, row {i}", rtol=fx.rtol, atol=fx.atol)


def check_metric_direction(metric: Any, fx: MetricFixture) -> None:
    """The exact attributions score better than the same values on the wrong features, in the
    metric's own direction (``higher_is_better``), on average over the rows."""
    where = f"{metric!r} on {fx.name}"
    perfect = float(_score(metric, fx.explanation, fx.model).nanmean())
    shuffled = float(_score(metric, fx.shuffled, fx.model).nanmean())
    better = perfect > shuffled if metric.higher_is_better else perfect < shuffled
    arrow = "higher" if metric.higher_is_better else "lower"
    assert better, (f"{where}: exact attributions score {perfect:.6g} and shuffled ones "
                    f"{shuffled:.6g}, but {arrow} is better")


def check_metric_after_load(metric: Any, fx: MetricFixture) -> None:
    """A saved-and-loaded explanation applies to the metric and scores exactly like the live
    one (``Explanation.save`` keeps the inputs and the feature spaces the metric perturbs)."""
    where, exp = f"{metric!r} on {fx.name}", fx.shuffled
    with tempfile.TemporaryDirectory() as folder:
        exp.save(folder)
        loaded = Explanation.load(folder)
    assert type(metric).applies_to(loaded), (
        f"{where}: applies to the live explanation but not to the loaded one: "
        f"{type(metric).why_not(loaded)}")
    _same(_score(metric, loaded, fx.model), _score(metric, exp, fx.model),
          f"{where}, loaded vs live")


MetricCheck = Callable[[Any, MetricFixture], None]

#: Checks run on every fixture a metric applies to (direction only on exact fixtures).
METRIC_CHECKS: tuple[MetricCheck, ...] = (check_metric_stateless, check_metric_seed,
                                          check_metric_batch_invariance, check_metric_after_load,
                                          check_metric_direction)


def _params_for(cls: type[Any]) -> list[dict[str, Any]]:
    make = getattr(cls, "_test_params", None)
    return make() if make is not None else [{}]


def iter_metric_checks(registry: _Registry, names: Iterable[str] | None = None, *,
                       no_direction: Mapping[str, str] | None = None,
                       deterministic: Mapping[str, bool] | None = None,
                       ) -> Iterator[tuple[str, Callable[[], None]]]:
    """``(id, check)`` pairs over metrics x parameter sets x :func:`metric_fixtures` x checks.

    Parameters
    ----------
    registry : a registry of Metric classes, such as ``metrics.METRICS``
    names : iterable of str, optional
        Defaults to every registered metric.
    no_direction : mapping of str to str, optional
        Metrics exempt from :func:`check_metric_direction`, each with the reason.
    deterministic : mapping of str to bool, optional
        Passed to :func:`check_metric_seed` by name (else the class attribute, if any).

    Notes
    -----
    A parameter set is one of the class's ``_test_params()`` dicts, or ``{}`` without it.
    """
    exempt, fixed = no_direction or {}, deterministic or {}
    for name in registry.names() if names is None else names:
        cls = registry.get(name)
        for params in _params_for(cls):
            pid = f"{name}({_kwargs(params)})"
            yield f"{pid}-check_metric_invalid_params", functools.partial(
                check_metric_invalid_params, cls, params)
            for fx in metric_fixtures():
                if not cls.applies_to(fx.explanation):
                    continue
                for check in METRIC_CHECKS:
                    if check is check_metric_direction and (not fx.exact or name in exempt):
                        continue
                    call: Callable[..., None] = check
                    if check is check_metric_seed and name in fixed:
                        call = functools.partial(check_metric_seed, deterministic=fixed[name])
                    yield f"{pid}-{fx.name}-{check.__name__}", functools.partial(
                        _run_check, call, cls, params, fx)


def _run_check(check: Callable[..., None], cls: type[Any], params: Mapping[str, Any],
               fx: MetricFixture) -> None:
    check(cls(**params), fx)


def parametrize_with_metric_checks(registry: _Registry, names: Iterable[str] | None = None,
                                   **kwargs: Any) -> Any:
    """A ``pytest.mark.parametrize("check", ...)`` over :func:`iter_metric_checks`.

    Examples
    --------
    >>> import metrics
    >>> from xai.testing import parametrize_with_metric_checks
    >>> @parametrize_with_metric_checks(metrics.METRICS, ["complexity"])
    ... def test_complexity_conforms(check):
    ...     check()
    """
    import pytest

    cases = list(iter_metric_checks(registry, names, **kwargs))
    return pytest.mark.parametrize("check", [pytest.param(c, id=i) for i, c in cases])
