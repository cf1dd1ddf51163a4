"""Explanation.load() validates what it reads: each way of tampering with a saved folder gives a
typed error that names the folder, the file and what is wrong."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import models
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file

import xai
from xai import Explanation, InvalidExplanationError

W = torch.tensor([[1.0, 0.5], [-2.0, 1.0], [0.5, -3.0], [3.0, 0.25]])
X = torch.tensor([[1.0, 1.0, 0.0, 1.0], [2.0, -1.0, 1.0, 0.5], [3.0, 2.0, 2.0, -1.0]])
DAMAGED = ("The files were changed or damaged after Explanation.save(); save the explanation "
           "again.")


@pytest.fixture(scope="module")
def exp() -> Explanation:
    model = models.Linear(W, torch.tensor([0.1, -0.2]))
    frame = pd.DataFrame(X.numpy(), columns=["age", "income", "debt", "score"])
    return xai.explain(model, frame, method="occlusion", target="all",
                       baseline=torch.tensor([0.5, 0.0, 1.0, -1.0], dtype=torch.float64))


def _edit_meta(folder: Path, edit: Callable[[dict[str, Any]], Any]) -> None:
    meta = json.loads((folder / "explanation.json").read_text())
    edit(meta)
    (folder / "explanation.json").write_text(json.dumps(meta))


def _edit_tensors(folder: Path, edit: Callable[[dict[str, torch.Tensor]], Any]) -> None:
    tensors = load_file(str(folder / "values.safetensors"))
    edit(tensors)
    save_file(tensors, str(folder / "values.safetensors"))


def _refused(folder: Path, problem: str, fix: str = DAMAGED) -> None:
    with pytest.raises(InvalidExplanationError, match=re.escape(
            f"Cannot load the Explanation saved at '{folder}': {problem}. {fix}")):
        Explanation.load(folder)


def test_a_shortened_name_list_is_refused_not_a_short_table(exp, tmp_path):
    exp.save(tmp_path)
    _edit_meta(tmp_path, lambda m: m["features"][1]["names"].pop())
    _refused(tmp_path, "features[1].names in explanation.json has 3 names, but example 1 has 4 "
             "(the example's real features)")


def test_a_missing_feature_space_or_target_name_is_refused(exp, tmp_path):
    exp.save(tmp_path / "a")
    _edit_meta(tmp_path / "a", lambda m: m["features"].pop())
    _refused(tmp_path / "a", "explanation.json has 2 'features', but 'values' has 3 examples")
    exp.save(tmp_path / "b")
    _edit_meta(tmp_path / "b", lambda m: m["target_names"][0].append("output 9"))
    _refused(tmp_path / "b", "target_names[0] in explanation.json has 3 names, but example 0 "
             "has 2 (the explained outputs)")
    exp.save(tmp_path / "c")
    _edit_meta(tmp_path / "c", lambda m: m["features"][0].__setitem__("names", [1, 2, 3, 4]))
    _refused(tmp_path / "c", "features[0].names in explanation.json must be a list of strings, "
             "got [1, 2, 3, 4]")


def test_ragged_names_are_checked_against_the_feature_mask(tiny_bert, tmp_path):
    text = xai.explain(tiny_bert, ["a fine film", "the plot was dull"], method="occlusion")
    text.save(tmp_path)
    _edit_meta(tmp_path, lambda m: m["features"][0]["names"].append("extra"))
    _refused(tmp_path, "features[0].names in explanation.json has 4 names, but example 0 has 3 "
             "(the example's real features)")


def test_a_newer_format_version_asks_for_an_upgrade(exp, tmp_path):
    exp.save(tmp_path)
    _edit_meta(tmp_path, lambda m: m.update(format_version=999))
    _refused(tmp_path, "explanation.json has format_version 999, but this version of "
             "posthoc-xai reads format versions 1, 2 and 3 only",
             'It was written by a newer posthoc-xai: upgrade it (pip install -U "posthoc-xai") '
             "to load this file.")


@pytest.mark.parametrize(("version", "shown"), [("2", "'2'"), (0, "0"), (True, "True")])
def test_a_malformed_format_version_is_refused(exp, tmp_path, version, shown):
    exp.save(tmp_path)
    _edit_meta(tmp_path, lambda m: m.update(format_version=version))
    _refused(tmp_path, f"explanation.json has format_version {shown}, but posthoc-xai reads "
             "format versions 1, 2 and 3")


def test_wrong_tensor_dtypes_are_refused(exp, tmp_path):
    exp.save(tmp_path / "int")
    _edit_tensors(tmp_path / "int", lambda t: t.update(values=t["values"].int()))
    _refused(tmp_path / "int", "the 'values' tensor in values.safetensors has dtype int32, but "
             "it must be float")
    exp.save(tmp_path / "f64")
    _edit_tensors(tmp_path / "f64", lambda t: t.update(values=t["values"].double()))
    _refused(tmp_path / "f64", "the 'values' tensor in values.safetensors has dtype float64, "
             "but 'float32' was written")
    exp.save(tmp_path / "target")
    _edit_tensors(tmp_path / "target", lambda t: t.update(target=t["target"].float()))
    _refused(tmp_path / "target", "the 'target' tensor in values.safetensors has dtype "
             "float32, but it must be int")


def test_wrong_tensor_shapes_and_extra_tensors_are_refused(exp, tmp_path):
    exp.save(tmp_path / "shape")
    _edit_tensors(tmp_path / "shape", lambda t: t.update(predictions=t["predictions"][:, :1].contiguous()))
    _refused(tmp_path / "shape", "'predictions' has shape (3, 1), but 'values' of shape "
             "(3, 2, 4) needs (3, 2)")
    exp.save(tmp_path / "extra")
    _edit_tensors(tmp_path / "extra", lambda t: t.update(bogus=torch.zeros(1)))
    _refused(tmp_path / "extra", "values.safetensors has unexpected tensors 'bogus'")
    exp.save(tmp_path / "gone")
    _edit_tensors(tmp_path / "gone", lambda t: t.pop("values"))
    _refused(tmp_path / "gone", "values.safetensors has no 'values' tensor")


def test_wrong_metadata_types_are_refused(exp, tmp_path):
    cases = {
        "mbi": (lambda m: m.update(multiplies_by_inputs="yes"),
                "the 'multiplies_by_inputs' field of explanation.json must be a JSON bool, got "
                "str 'yes'"),
        "method": (lambda m: m.pop("method"), "explanation.json has no 'method' field"),
        "modality": (lambda m: m["model_info"].update(modality="audio"),
                     "model_info.modality in explanation.json is 'audio', not one of "
                     "'tabular', 'image', 'text', 'generation', 'graph'"),
        "kind": (lambda m: m["model_info"].update(output_kind="odds"),
                 "model_info.output_kind in explanation.json is 'odds', not one of "
                 "'logits', 'probabilities', 'log_probabilities', 'scores'"),
        "texts": (lambda m: m["inputs"].update(texts=["only one"]),
                  "'inputs.texts' in explanation.json must be a list of 3 strings, got "
                  "['only one']"),
        "feature": (lambda m: m["features"][2].update(kind="Pixels"),
                    "features[2] in explanation.json has kind 'Pixels', not one of "
                    "'TensorFeatures', 'MultiTensorFeatures', 'TextFeatures', 'TokenFeatures', "
                    "'WordFeatures', 'GraphEdges', 'GraphNodes' or 'NamedFeatures'"),
        "array": (lambda m: m["params"]["baseline"].update(dtype="float99"),
                  "the 'params' field of explanation.json holds an array that cannot be "
                  "rebuilt (data type 'float99' not understood)"),
    }
    for name, (edit, problem) in cases.items():
        exp.save(tmp_path / name)
        _edit_meta(tmp_path / name, edit)
        _refused(tmp_path / name, problem)


def test_damaged_files_give_typed_errors_naming_the_file(exp, tmp_path):
    exp.save(tmp_path / "json")
    (tmp_path / "json" / "explanation.json").write_text('{"format_version": 2,')
    _refused(tmp_path / "json", "explanation.json is not valid JSON (Expecting property name "
             "enclosed in double quotes: line 1 column 22 (char 21))")
    exp.save(tmp_path / "list")
    (tmp_path / "list" / "explanation.json").write_text("[1, 2]")
    _refused(tmp_path / "list", "explanation.json holds a JSON list, not an object")
    exp.save(tmp_path / "st")
    st = tmp_path / "st" / "values.safetensors"
    st.write_bytes(st.read_bytes()[:100])
    _refused(tmp_path / "st", "values.safetensors is not a readable safetensors file (Error "
             "while deserializing header: invalid header length)")


def test_missing_files_and_paths(exp, tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(
            f"No saved Explanation at '{tmp_path / 'nope'}': the path does not exist. Pass the "
            "folder that Explanation.save() wrote.")):
        Explanation.load(tmp_path / "nope")
    exp.save(tmp_path / "e")
    (tmp_path / "e" / "values.safetensors").unlink()
    _refused(tmp_path / "e", "values.safetensors is missing", "A saved Explanation is a folder "
             "with explanation.json and values.safetensors, as Explanation.save() writes it.")
    _refused(tmp_path / "e" / "explanation.json", "it is a file, not a folder", "Pass the "
             "folder that contains explanation.json and values.safetensors.")


def _as_version_2(folder: Path) -> None:
    """Rewrite a saved folder as version 2 wrote it: names, texts and modality as copies, no
    inputs or feature spaces, model_info flat with the "output" string."""
    _edit_tensors(folder, lambda t: [t.pop(k) for k in list(t)
                                     if k.startswith(("features.", "inputs."))])

    def down(m: dict[str, Any]) -> None:
        info = m.pop("model_info")
        legacy = {"logits": "logits", "scores": "model output"}[info["output_kind"]]
        m.update(format_version=2, names=[f["names"] for f in m.pop("features")],
                 texts=None if m["inputs"] is None else m["inputs"]["texts"],
                 modality=info["modality"], multiply_by_inputs=m.pop("multiplies_by_inputs"),
                 model_info={"adapter": info["adapter"], "model": info["model"],
                             "output": legacy, **info["details"]})
        del m["inputs"]
        m["dtypes"] = {k: v for k, v in m["dtypes"].items()
                       if not k.startswith(("features.", "inputs."))}
    _edit_meta(folder, down)


def test_a_version_1_file_still_loads(exp, tmp_path):
    exp.save(tmp_path)
    _as_version_2(tmp_path)
    _edit_tensors(tmp_path, lambda t: t.pop("target_scores"))

    def as_v1(m: dict[str, Any]) -> None:
        m.update(format_version=1, params={**m["params"], "baseline": {
            "__array__": m["params"]["baseline"]["__array__"]}})
        del m["dtypes"]
    _edit_meta(tmp_path, as_v1)
    back = Explanation.load(tmp_path)
    torch.testing.assert_close(back.values, exp.values, rtol=0, atol=0)
    assert back.names == exp.names
    assert all(isinstance(f, xai.NamedFeatures) for f in back.features)
    assert back.target.scores is None
    torch.testing.assert_close(back.params["baseline"], exp.params["baseline"].float(),
                               rtol=0, atol=0)


def test_a_version_2_text_file_loads_by_name_with_its_texts_and_output_kind(tiny_bert,
                                                                            tmp_path):
    live = xai.explain(tiny_bert, ["a fine film", "the plot was dull"], method="occlusion")
    live.save(tmp_path)
    _as_version_2(tmp_path)
    back = Explanation.load(tmp_path)
    assert back.texts == live.texts == ("a fine film", "the plot was dull")
    assert back.names == live.names
    assert back.model_info.output_kind == "logits"
    assert back.model_info == live.model_info
    torch.testing.assert_close(back.probabilities(), live.probabilities(), rtol=0, atol=0)
    assert back.inputs is None


def test_damaged_feature_spaces_and_inputs_are_refused(exp, tiny_bert, tmp_path):
    exp.save(tmp_path / "ids")
    _edit_tensors(tmp_path / "ids", lambda t: t.update(
        {"features.0.ids": torch.tensor([0, 1, 2, 7])}))
    _refused(tmp_path / "ids", "features[0] in explanation.json has feature ids outside 0..3 "
             "(one per name)")
    exp.save(tmp_path / "gone")
    _edit_tensors(tmp_path / "gone", lambda t: t.pop("features.1.x"))
    _edit_meta(tmp_path / "gone", lambda m: m["dtypes"].pop("features.1.x"))
    _refused(tmp_path / "gone", "features[1] in explanation.json is a TensorFeatures, but "
             "values.safetensors has no 'features.1.x' tensor")
    exp.save(tmp_path / "rows")
    _edit_tensors(tmp_path / "rows", lambda t: t.update({"inputs.inputs": t["inputs.inputs"][:2]}))
    _refused(tmp_path / "rows", "the 'inputs.inputs' tensor has shape (2, 4), but 'values' has "
             "3 examples (one row each)")
    text = xai.explain(tiny_bert, ["a fine film"], method="occlusion")
    text.save(tmp_path / "groups")
    _edit_meta(tmp_path / "groups", lambda m: m["features"][0]["groups"][0].append(99))
    _refused(tmp_path / "groups", "features[0] in explanation.json needs one list of token "
             "positions (0..4) per feature name")


def test_version_2_keeps_param_dtypes_tuples_and_target_scores(exp, tmp_path):
    exp.save(tmp_path)
    back = Explanation.load(tmp_path)
    assert back.params["baseline"].dtype == torch.float64
    torch.testing.assert_close(back.params["baseline"], exp.params["baseline"], rtol=0, atol=0)
    torch.testing.assert_close(back.target.scores, exp.target.scores, rtol=0, atol=0)
    tupled = dataclasses.replace(exp, params={"bins": (0.1, 0.5), "nested": [(1, "a")]})
    tupled.save(tmp_path / "t")
    assert dict(Explanation.load(tmp_path / "t").params) == {"bins": (0.1, 0.5),
                                                               "nested": [(1, "a")]}
