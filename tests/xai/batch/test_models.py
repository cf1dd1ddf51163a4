"""Model specs: skops round trip, pickles refused, HF folders, entry points, clear errors."""

from __future__ import annotations

import pickle
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import xai
from xai.batch import Job, load_model, score
from xai.exceptions import InvalidParameterError

sys.path.insert(0, str(Path(__file__).parent))


def _double(x):  # a function no skops default trusts
    return 2 * x


@pytest.fixture(scope="module")
def fitted(logreg):
    return logreg


def test_skops_round_trip_gives_the_same_scores(fitted, tmp_path):
    sio = pytest.importorskip("skops.io")  # the [batch] extra
    model, x = fitted
    path = tmp_path / "model.skops"
    sio.dump(model, path)
    loaded = load_model(str(path))
    assert type(loaded.model) is type(model)
    np.testing.assert_array_equal(loaded.model.coef_, model.coef_)
    table = score(str(path), x[:4], Job(methods=["occlusion"]), show_progress=False)
    exp = xai.explain(model, x[:4], method="occlusion")
    for i in range(4):
        torch.testing.assert_close(torch.tensor(table["attributions"][i], dtype=torch.float32),
                                   exp.values[i, 0], rtol=0, atol=0)


def test_skops_untrusted_types_are_listed(fitted, tmp_path):
    sio = pytest.importorskip("skops.io")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    model, x = fitted
    pipe = make_pipeline(FunctionTransformer(_double), model)
    path = tmp_path / "pipe.skops"
    sio.dump(pipe, path)
    untrusted = sio.get_untrusted_types(file=path)
    assert untrusted  # the custom function
    with pytest.raises(InvalidParameterError) as info:
        load_model(str(path))
    assert all(t in str(info.value) for t in untrusted)
    assert "--trust-type" in str(info.value)
    loaded = load_model(str(path), trusted_types=untrusted)
    np.testing.assert_array_equal(loaded.model.predict_proba(x[:3]), pipe.predict_proba(x[:3]))


@pytest.mark.parametrize("suffix", [".pkl", ".joblib"])
def test_pickles_are_refused_unless_trusted(fitted, tmp_path, suffix):
    model, x = fitted
    path = tmp_path / f"model{suffix}"
    path.write_bytes(pickle.dumps(model))
    with pytest.raises(InvalidParameterError) as info:
        load_model(str(path))
    assert str(info.value) == (
        f"The model file {str(path)!r} is a pickle, and unpickling runs arbitrary code. Save the "
        "model with skops (skops.io.dump(model, 'model.skops')), or pass --trust-pickle "
        "(trust_pickle=True) only for a file you made yourself.")
    loaded = load_model(str(path), trust_pickle=True)
    np.testing.assert_array_equal(loaded.model.coef_, model.coef_)


def test_a_missing_model_names_the_value_and_the_fix():
    with pytest.raises(InvalidParameterError) as info:
        load_model("models/credit-v2.skops")
    assert info.value.parameter == "model"
    assert str(info.value) == (
        "The model 'models/credit-v2.skops' is not a demo model name, an existing file or "
        "folder, or a 'module:function' entry point. Use demo-credit, demo-sentiment, a graph "
        "demo model (gcn-ba2motifs, gin-ba2motifs, gcn-mutag, gin-mutag), a Hugging Face model "
        "folder, a .skops file, or a 'package.module:function' that returns a model.")


def test_entry_point_specs():
    loaded = load_model("batch_helpers:slow_credit")
    assert loaded.target == "1"
    assert "baseline" in loaded.method_defaults
    with pytest.raises(InvalidParameterError, match="has no 'nothing'"):
        load_model("batch_helpers:nothing")
    with pytest.raises(InvalidParameterError, match="cannot be imported"):
        load_model("no_such_module_xyz:make")


def test_folder_without_config_is_not_a_hf_model(tmp_path):
    with pytest.raises(InvalidParameterError, match="has no config.json"):
        load_model(str(tmp_path))


def test_hf_folder_loads_the_saved_model(tiny_bert, tmp_path, texts):
    model, tokenizer = tiny_bert
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded = load_model(str(tmp_path))
    got = xai.explain(loaded.model, texts, method="occlusion")
    want = xai.explain(tiny_bert, texts, method="occlusion")
    torch.testing.assert_close(got.values, want.values, rtol=1e-5, atol=1e-6)
    assert got.feature_names == want.feature_names


def test_a_pickle_renamed_skops_is_not_a_skops_archive(fitted, tmp_path):
    pytest.importorskip("skops.io")
    model, _ = fitted
    path = tmp_path / "model.skops"
    path.write_bytes(pickle.dumps(model))  # before: zipfile.BadZipFile from skops
    with pytest.raises(InvalidParameterError) as info:
        load_model(str(path))
    assert info.value.parameter == "model"
    assert str(info.value) == (
        f"The model file {str(path)!r} is not a skops archive (File is not a zip file). A "
        "pickle renamed .skops is still a pickle: if you made it yourself, convert it once with "
        "skops.io.dump(joblib.load('model.pkl'), 'model.skops'), or load it as .pkl with "
        "--trust-pickle (trust_pickle=True).")


def test_a_hf_folder_with_pickled_weights_is_refused(tiny_bert, tmp_path):
    model, _ = tiny_bert
    model.config.save_pretrained(tmp_path)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(InvalidParameterError) as info:  # before: left to torch.load
        load_model(str(tmp_path))
    assert str(info.value) == (
        f"The model folder {str(tmp_path)!r} holds its weights only as a pickle "
        "(pytorch_model.bin), and unpickling runs arbitrary code, so it is not loaded. If you "
        "trust the file, convert the folder once to safetensors: load it with transformers, "
        "then model.save_pretrained(folder, safe_serialization=True).")
    (tmp_path / "pytorch_model.bin").unlink()
    with pytest.raises(InvalidParameterError, match=re.escape(
            "has no weights file (model.safetensors). Save the model with "
            "model.save_pretrained(folder, safe_serialization=True).")):
        load_model(str(tmp_path))
