"""Registry: registration, aliases, the duplicate guard, scoped() undo, sorted names, suggestions."""

from __future__ import annotations

import re

import pytest

import xai
from xai import METHODS, Registry
from xai.exceptions import UnknownNameError


@pytest.fixture
def widgets():
    return Registry("widget")


def test_register_returns_the_object_and_sets_its_name(widgets):
    class Gear:
        pass

    assert widgets.register("gear")(Gear) is Gear
    assert widgets.get("gear") is Gear
    assert Gear.name == "gear"
    assert "gear" in widgets


def test_non_class_objects_are_registered_unchanged(widgets):
    def spin():
        return 1

    widgets.register("spin")(spin)
    assert widgets.get("spin") is spin
    assert not hasattr(spin, "name")


def test_alias_resolves_to_the_canonical_entry(widgets):
    class Gear:
        pass

    widgets.register("gear_wheel", aliases=("gw", "cog"))(Gear)
    assert widgets.get("gw") is Gear
    assert widgets.get("cog") is Gear
    assert widgets.canonical("gw") == "gear_wheel"
    assert widgets.canonical("gear_wheel") == "gear_wheel"
    assert widgets.aliases("gear_wheel") == ("cog", "gw")
    assert "cog" in widgets
    assert widgets.names() == ("gear_wheel",)  # aliases are not names


def test_names_are_sorted_whatever_the_registration_order(widgets):
    for name in ("zeta", "alpha", "mid", "Beta"):
        widgets.register(name)(type(name, (), {}))
    assert widgets.names() == ("Beta", "alpha", "mid", "zeta")


def test_duplicate_name_is_refused(widgets):
    widgets.register("gear")(type("A", (), {}))
    msg = "A widget named 'gear' is already registered. Pass overwrite=True to replace it."
    with pytest.raises(ValueError, match=f"^{re.escape(msg)}$"):
        widgets.register("gear")(type("B", (), {}))


def test_alias_clashing_with_a_name_or_alias_is_refused(widgets):
    widgets.register("gear", aliases=("g",))(type("A", (), {}))
    with pytest.raises(ValueError, match=re.escape("A widget named 'g' is already registered.")):
        widgets.register("gong", aliases=("g",))(type("B", (), {}))
    with pytest.raises(ValueError, match=re.escape("A widget named 'gear' is already registered")):
        widgets.register("other", aliases=("gear",))(type("C", (), {}))
    assert widgets.names() == ("gear",)  # a refused registration leaves nothing behind


def test_overwrite_replaces(widgets):
    a, b = type("A", (), {}), type("B", (), {})
    widgets.register("gear")(a)
    widgets.register("gear", overwrite=True)(b)
    assert widgets.get("gear") is b


def test_scoped_undoes_registrations_and_overwrites(widgets):
    a, b, c = type("A", (), {}), type("B", (), {}), type("C", (), {})
    widgets.register("gear", aliases=("g",))(a)
    with widgets.scoped() as scoped:
        assert scoped is widgets
        widgets.register("temp", aliases=("t",))(b)
        widgets.register("gear", overwrite=True)(c)
        assert widgets.get("t") is b
        assert widgets.get("gear") is c
    assert widgets.names() == ("gear",)
    assert widgets.get("gear") is a
    assert "t" not in widgets


def test_scoped_undoes_even_when_the_block_raises(widgets):
    def register_then_fail():
        with widgets.scoped():
            widgets.register("temp")(type("T", (), {}))
            assert "temp" in widgets
            msg = "boom"
            raise RuntimeError(msg)

    with pytest.raises(RuntimeError, match="boom"):
        register_then_fail()
    assert "temp" not in widgets


def test_unknown_name_suggests_the_closest(widgets):
    for name in ("integrated_gradients", "occlusion"):
        widgets.register(name)(type(name, (), {}))
    msg = ("Unknown widget 'oclusion'. Did you mean 'occlusion'? Available widgets: "
           "integrated_gradients, occlusion.")
    with pytest.raises(UnknownNameError, match=f"^{re.escape(msg)}$") as info:
        widgets.get("oclusion")
    assert (info.value.kind, info.value.name) == ("widget", "oclusion")
    assert info.value.available == ("integrated_gradients", "occlusion")


def test_a_close_alias_suggests_its_canonical_name(widgets):
    widgets.register("integrated_gradients", aliases=("igx",))(type("IG", (), {}))
    with pytest.raises(UnknownNameError, match=re.escape("Did you mean 'integrated_gradients'?")):
        widgets.get("igy")


def test_no_suggestion_when_nothing_is_close(widgets):
    widgets.register("occlusion")(type("O", (), {}))
    msg = "Unknown widget 'zzz'. Available widgets: occlusion."
    with pytest.raises(UnknownNameError, match=f"^{re.escape(msg)}$"):
        widgets.get("zzz")


def test_non_str_name(widgets):
    with pytest.raises(UnknownNameError, match=re.escape("Widget names are str. Got None instead.")):
        widgets.get(None)


def test_methods_registry_holds_the_builtin_methods_and_aliases():
    assert {"integrated_gradients", "occlusion", "shapley_sampling"} <= set(METHODS.names())
    assert METHODS.get("ig") is xai.IntegratedGradients
    assert METHODS.canonical("ig") == "integrated_gradients"
    assert METHODS.get("occlusion") is xai.Occlusion
    assert METHODS.names() == tuple(sorted(METHODS.names()))
    msg = ("Unknown method 'integrated_gradient'. Did you mean 'integrated_gradients'? Available "
           f"methods: {', '.join(METHODS.names())}.")
    with pytest.raises(UnknownNameError, match=f"^{re.escape(msg)}$"):
        METHODS.get("integrated_gradient")


def test_register_method_is_the_methods_registry_and_scoped_undoes_it():
    before = METHODS.names()
    with METHODS.scoped():

        @xai.register_method("temporary_method", aliases=("tmp",))
        class Temporary(xai.Occlusion):
            pass

        assert METHODS.get("tmp") is Temporary
        assert "temporary_method" in [row["name"] for row in xai.list_methods()]
    assert METHODS.names() == before
    assert "tmp" not in METHODS
