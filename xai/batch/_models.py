"""Model specs of ``xai score``: demo names, Hugging Face folders, skops files, entry points.

A spec is a string, so it travels to Ray workers and each worker loads the model once
(`ModelFactory`). Pickles run arbitrary code when loaded and are refused unless trusted.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..exceptions import InvalidParameterError, MissingDependencyError, UnsupportedModelError

__all__ = ["DEMO_MODELS", "LoadedModel", "ModelFactory", "load_model"]

#: Names of the embedded demo models (the graph ones need the ``[graph]`` extra).
DEMO_MODELS: tuple[str, ...] = ("demo-credit", "demo-sentiment")
#: The embedded GNNs of :mod:`xai.demo.graphs` (GCN and GIN on BA-2Motifs and MUTAG).
GRAPH_DEMO_MODELS: tuple[str, ...] = ("gcn-ba2motifs", "gin-ba2motifs", "gcn-mutag",
                                      "gin-mutag")

PICKLE_SUFFIXES: tuple[str, ...] = (".pkl", ".pickle", ".joblib")
#: Weight files of a Hugging Face folder that are pickles (refused: only safetensors load).
PICKLED_WEIGHTS: tuple[str, ...] = ("pytorch_model*.bin", "*.pt", "*.pth", "*.ckpt")
_ENTRY_POINT = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_FIX = ("Use demo-credit, demo-sentiment, a graph demo model (gcn-ba2motifs, gin-ba2motifs, "
        "gcn-mutag, gin-mutag), a Hugging Face model folder, a .skops file, or a "
        "'package.module:function' that returns a model.")


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    """A model plus the defaults that make sense for it.

    Attributes
    ----------
    model : Any
        Anything ``xai.as_adapter`` accepts.
    method_defaults : mapping
        Method fields applied when a method has that field and the user did not set it
        (e.g. the demo credit model's ``baseline`` row).
    target : Any
        Default explained output (None: the predicted class).
    name : str
        The spec it was loaded from.
    """

    model: Any
    method_defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    target: Any = None
    name: str = ""


@dataclasses.dataclass(frozen=True)
class ModelFactory:
    """Picklable zero-argument loader: a spec string (loaded on call) or a model object."""

    spec: str | None = None
    obj: Any = None
    trust_pickle: bool = False
    trusted_types: tuple[str, ...] = ()

    def __call__(self) -> LoadedModel:
        """Load the model (a spec) or wrap the object."""
        if self.spec is not None:
            return load_model(self.spec, trust_pickle=self.trust_pickle,
                              trusted_types=self.trusted_types)
        if isinstance(self.obj, LoadedModel):
            return self.obj
        return LoadedModel(self.obj, name=type(self.obj).__name__)


def load_model(spec: str, *, trust_pickle: bool = False,
               trusted_types: Sequence[str] = ()) -> LoadedModel:
    """Load the model named by ``spec``.

    Parameters
    ----------
    spec : str
        ``"demo-credit"``, ``"demo-sentiment"``, a graph demo model (``"gcn-ba2motifs"``,
        ``"gin-ba2motifs"``, ``"gcn-mutag"``, ``"gin-mutag"``), a Hugging Face model folder (with
        ``config.json``), a ``.skops`` file, a ``.pkl``/``.joblib`` file (only with
        ``trust_pickle=True``), or ``"package.module:function"`` returning a model (or a
        `LoadedModel`).
    trust_pickle : bool, default=False
        Allow pickle files. Unpickling runs arbitrary code: only for files you made yourself.
    trusted_types : sequence of str, default=()
        Types a ``.skops`` file may contain beyond skops's defaults (see
        ``skops.io.get_untrusted_types``).

    Returns
    -------
    LoadedModel

    Raises
    ------
    InvalidParameterError
        The spec names nothing that exists, or a pickle without ``trust_pickle``, or a skops
        file holding untrusted types (or that is not a skops archive), or a Hugging Face
        folder without safetensors weights (pickled ``pytorch_model.bin`` weights are refused
        whatever ``trust_pickle`` says; convert them with ``save_pretrained``).
    """
    if spec in DEMO_MODELS:
        return _load_demo(spec)
    if spec in GRAPH_DEMO_MODELS:
        from ..demo.graphs import load_graph_model

        return LoadedModel(load_graph_model(spec), name=spec)
    path = Path(spec)
    if not path.exists():
        if _ENTRY_POINT.match(spec):
            return _load_entry_point(spec)
        msg = (f"The model {spec!r} is not a demo model name, an existing file or folder, or a "
               f"'module:function' entry point. {_FIX}")
        raise InvalidParameterError(msg, parameter="model", value=spec)
    if path.is_dir():
        return _load_hf_folder(path)
    suffix = path.suffix.lower()
    if suffix == ".skops":
        return LoadedModel(_load_skops(path, trusted_types), name=spec)
    if suffix in PICKLE_SUFFIXES:
        return LoadedModel(_load_pickle(path, trust_pickle), name=spec)
    msg = f"The model file {spec!r} has an unsupported suffix {suffix!r}. {_FIX}"
    raise InvalidParameterError(msg, parameter="model", value=spec)


def _load_demo(name: str) -> LoadedModel:
    from ..demo import credit_baseline, load_credit_model, load_sentiment_model

    if name == "demo-credit":
        return LoadedModel(load_credit_model(), {"baseline": credit_baseline()}, target="1",
                           name=name)
    return LoadedModel(load_sentiment_model(), name=name)


def _load_entry_point(spec: str) -> LoadedModel:
    module_name, _, attr = spec.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as err:
        msg = (f"The model entry point {spec!r} cannot be imported: {err}. Check that "
               f"{module_name!r} is installed or on PYTHONPATH. {_FIX}")
        raise InvalidParameterError(msg, parameter="model", value=spec) from err
    for part in attr.split("."):
        if not hasattr(obj, part):
            msg = f"The model entry point {spec!r}: module {module_name!r} has no {attr!r}."
            raise InvalidParameterError(msg, parameter="model", value=spec)
        obj = getattr(obj, part)
    if not callable(obj):
        msg = f"The model entry point {spec!r} must name a function that returns a model."
        raise InvalidParameterError(msg, parameter="model", value=spec)
    model = obj()
    return model if isinstance(model, LoadedModel) else LoadedModel(model, name=spec)


def _load_hf_folder(path: Path) -> LoadedModel:
    if not (path / "config.json").is_file():
        msg = (f"The model folder {str(path)!r} has no config.json, so it is not a Hugging Face "
               f"model folder. Save one with model.save_pretrained(folder) and "
               f"tokenizer.save_pretrained(folder). {_FIX}")
        raise InvalidParameterError(msg, parameter="model", value=str(path))
    try:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
    except ImportError as err:
        msg = ('Loading a Hugging Face model folder requires transformers. Install it with: '
               'pip install "posthoc-xai[hf]".')
        raise MissingDependencyError(msg) from err
    _check_safetensors(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, local_files_only=True,
                                                               use_safetensors=True)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model.eval()
    return LoadedModel((model, tokenizer), name=str(path))


def _check_safetensors(path: Path) -> None:
    """Refuse a folder whose weights are pickles only (``pytorch_model.bin`` and the like)."""
    if any(path.glob("*.safetensors")) or (path / "model.safetensors.index.json").is_file():
        return
    pickled = sorted(p.name for pattern in PICKLED_WEIGHTS for p in path.glob(pattern))
    if pickled:
        msg = (f"The model folder {str(path)!r} holds its weights only as a pickle "
               f"({', '.join(pickled)}), and unpickling runs arbitrary code, so it is not loaded. "
               "If you trust the file, convert the folder once to safetensors: load it with "
               "transformers, then model.save_pretrained(folder, safe_serialization=True).")
    else:
        msg = (f"The model folder {str(path)!r} has no weights file (model.safetensors). Save "
               "the model with model.save_pretrained(folder, safe_serialization=True).")
    raise InvalidParameterError(msg, parameter="model", value=str(path))


def _load_skops(path: Path, trusted_types: Sequence[str]) -> Any:
    try:
        import skops.io as sio
    except ImportError as err:
        msg = ('Loading a .skops model requires skops. Install it with: '
               'pip install "posthoc-xai[batch]".')
        raise MissingDependencyError(msg) from err
    try:
        found = sio.get_untrusted_types(file=path)
    except (zipfile.BadZipFile, KeyError) as err:  # not a zip, or a zip without schema.json
        msg = (f"The model file {str(path)!r} is not a skops archive ({err}). A pickle renamed "
               ".skops is still a pickle: if you made it yourself, convert it once with "
               "skops.io.dump(joblib.load('model.pkl'), 'model.skops'), or load it as .pkl with "
               "--trust-pickle (trust_pickle=True).")
        raise InvalidParameterError(msg, parameter="model", value=str(path)) from err
    untrusted = sorted(set(found) - set(trusted_types))
    if untrusted:
        listed = ", ".join(untrusted)
        msg = (f"The skops file {str(path)!r} holds types that skops does not trust by default: "
               f"{listed}. Check them, then trust them with --trust-type TYPE (CLI) or "
               f"trusted_types=[...] (Python).")
        raise InvalidParameterError(msg, parameter="model", value=str(path))
    return sio.load(path, trusted=list(trusted_types) or None)


def _load_pickle(path: Path, trust_pickle: bool) -> Any:
    if not trust_pickle:
        msg = (f"The model file {str(path)!r} is a pickle, and unpickling runs arbitrary code. "
               f"Save the model with skops (skops.io.dump(model, 'model.skops')), or pass "
               f"--trust-pickle (trust_pickle=True) only for a file you made yourself.")
        raise InvalidParameterError(msg, parameter="model", value=str(path))
    import joblib  # a dependency of scikit-learn; reads plain pickles too

    try:
        return joblib.load(path)
    except Exception as err:
        msg = f"The model file {str(path)!r} cannot be unpickled: {err}."
        raise UnsupportedModelError(msg) from err
