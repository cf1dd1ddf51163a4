"""xai.batch.score: values equal xai.explain, chunking does not matter, bad rows do not stop a job."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import xai
from xai.batch import Job, read_rows, score
from xai.demo import credit_baseline, load_credit_model, split_credit
from xai.exceptions import InvalidParameterError, MissingDependencyError

sys.path.insert(0, str(Path(__file__).parent))
import batch_helpers  # noqa: E402

SHAPLEY = {"n_permutations": 8}
FAITH = {"n_subsets": 20}


@pytest.fixture(scope="module")
def applicants() -> pd.DataFrame:
    _, x_test, _, _ = split_credit(random_state=0)
    return x_test.iloc[:10].reset_index(drop=True)


@pytest.fixture(scope="module")
def credit_scores(applicants: pd.DataFrame) -> pd.DataFrame:
    job = Job(methods=["occlusion", ("shapley_sampling", SHAPLEY)],
              metrics=[("faithfulness", FAITH)], chunk_size=4, random_state=3)
    return score("demo-credit", applicants, job, show_progress=False)


def _values(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns=["elapsed"])


def test_rows_equal_explain_and_evaluate_on_the_same_row(applicants, credit_scores):
    import metrics

    model = load_credit_model()
    assert list(credit_scores["id"]) == [str(i) for i in range(10) for _ in range(2)]
    assert list(credit_scores["method"]) == ["occlusion", "shapley_sampling"] * 10
    assert set(credit_scores["status"]) == {"ok"}
    for i in (0, 5, 9):
        for method in ("occlusion", "shapley_sampling"):
            row = credit_scores[(credit_scores["id"] == str(i)) &
                                (credit_scores["method"] == method)].iloc[0]
            exp = xai.explain(model, applicants.iloc[[i]], method=method, target="1",
                              baseline=credit_baseline(), random_state=int(row["seed"]),
                              **(SHAPLEY if method == "shapley_sampling" else {}))
            got = torch.tensor(row["attributions"], dtype=torch.float32)
            torch.testing.assert_close(got, exp.values[0, 0], rtol=0, atol=0)
            assert row["feature_names"] == list(exp.feature_names[0])
            assert row["prediction"] == float(exp.predictions[0, 0])
            res = metrics.evaluate(exp, model, [metrics.FaithfulnessCorrelation(n_subsets=20)],
                                   random_state=int(row["seed"]))
            assert row["faithfulness_correlation"] == float(res["faithfulness_correlation"]
                                                            .scores[0, 0])
    params = json.loads(credit_scores["method_params"].iloc[1])
    assert params["n_permutations"] == 8
    assert params["baseline"] == "<DataFrame shape=(1, 20)>"


def test_values_do_not_depend_on_chunking(applicants, credit_scores):
    job = Job(methods=["occlusion", ("shapley_sampling", SHAPLEY)],
              metrics=[("faithfulness_correlation", FAITH)], chunk_size=3, random_state=3)
    other = score("demo-credit", applicants, job, show_progress=False)
    pd.testing.assert_frame_equal(_values(other), _values(credit_scores))
    job = Job(methods=[("shapley_sampling", SHAPLEY)], chunk_size=1, random_state=3)
    single = score("demo-credit", applicants.iloc[[7, 2]], job, show_progress=False)
    both = credit_scores[credit_scores["method"] == "shapley_sampling"].set_index("id")
    assert list(single["attributions"]) == [both.loc["7", "attributions"],
                                            both.loc["2", "attributions"]]


def test_parquet_and_jsonl_hold_the_same_rows(applicants, tmp_path):
    job = Job(methods=["occlusion"], metrics=["complexity"], chunk_size=4)
    pq = score("demo-credit", applicants, job, output=tmp_path / "s.parquet", show_progress=False)
    js = score("demo-credit", applicants, job, output=tmp_path / "s.jsonl", show_progress=False)
    pd.testing.assert_frame_equal(_values(pq), _values(js))
    assert [r["id"] for r in read_rows(tmp_path / "s.parquet")] == [str(i) for i in range(10)]
    assert read_rows(tmp_path / "s.jsonl")[3]["attributions"] == pq["attributions"][3]
    assert not (tmp_path / "s.parquet.parts").exists()


def test_parquet_and_jsonl_inputs_read_like_the_frame(applicants, tmp_path):
    frame = applicants.iloc[:4].assign(key=["w", "x", "y", "z"])
    frame.to_parquet(tmp_path / "a.parquet")
    frame.to_json(tmp_path / "a.jsonl", orient="records", lines=True)
    want = score("demo-credit", frame, Job(methods=["occlusion"], id_column="key"),
                 show_progress=False)
    for name in ("a.parquet", "a.jsonl"):
        got = score("demo-credit", tmp_path / name, Job(methods=["occlusion"], id_column="key"),
                    show_progress=False)
        pd.testing.assert_frame_equal(_values(got), _values(want))
    assert list(want["id"]) == ["w", "x", "y", "z"]


def test_bad_csv_rows_are_errors_and_the_rest_is_scored(applicants, tmp_path):
    frame = applicants.astype(object)
    frame.loc[2, "duration"] = "twelve"
    frame.loc[6, "age"] = None
    path = tmp_path / "applicants.csv"
    frame.to_csv(path, index=False)
    table = score("demo-credit", path, Job(methods=["occlusion"], chunk_size=4),
                  show_progress=False)
    clean = score("demo-credit", applicants, Job(methods=["occlusion"], chunk_size=4),
                  show_progress=False)
    status = dict(zip(table["id"], table["status"], strict=True))
    assert [k for k, v in status.items() if v == "error"] == ["2", "6"]
    errors = table.set_index("id")["error"]
    assert errors["2"] == "InvalidInputError: Column 'duration' holds 'twelve', which is not a number."
    assert errors["6"].startswith("InvalidInputError")
    assert table.set_index("id").loc["6", "attributions"] is None
    ok = table["status"] == "ok"
    assert list(table.loc[ok, "attributions"]) == list(clean.loc[ok, "attributions"])
    assert table.attrs["summary"]["rows_failed"] == 2


def test_a_model_error_fails_only_its_row():
    rows = np.array([[1.0, 2.0, 0.5], [13.0, 1.0, 1.0], [0.5, 0.5, 0.5]])
    table = score(batch_helpers.fragile_linear(), rows, Job(methods=["occlusion"], chunk_size=3),
                  show_progress=False)
    assert list(table["status"]) == ["ok", "error", "ok"]
    assert table["error"][1] == "ValueError: cannot score a row with x0=13.0"
    assert table["attributions"][0] == [1.0, 4.0, 1.5]  # occlusion of x @ [1, 2, 3] toward 0
    assert table["attributions"][2] == [0.5, 1.0, 1.5]


def test_interrupted_job_resumes_without_losing_or_duplicating_rows(tmp_path):
    rows = np.arange(30, dtype=float).reshape(10, 3) / 7
    out = tmp_path / "s.parquet"
    # occlusion makes 2 calls per chunk (scores, masks): 3 chunks of 3 finish, the 4th dies
    with pytest.raises(batch_helpers.Interrupt):
        score(batch_helpers.fragile_linear(interrupt_after=6), rows,
              Job(methods=["occlusion"], chunk_size=3), output=out, show_progress=False)
    parts = sorted((tmp_path / "s.parquet.parts").glob("part-*"))
    assert len(parts) == 3
    assert not out.exists()
    with pytest.raises(InvalidParameterError, match="already exists"):
        score(batch_helpers.fragile_linear(), rows, Job(methods=["occlusion"]), output=out)
    resumed = score(batch_helpers.fragile_linear(), rows, Job(methods=["occlusion"], chunk_size=3),
                    output=out, resume=True, show_progress=False)
    assert resumed.attrs["summary"]["examples_skipped"] == 9
    full = score(batch_helpers.fragile_linear(), rows, Job(methods=["occlusion"], chunk_size=4),
                 show_progress=False)
    pd.testing.assert_frame_equal(_values(resumed), _values(full))
    again = score(batch_helpers.fragile_linear(), rows, Job(methods=["occlusion"]), output=out,
                  resume=True, show_progress=False)
    assert again.attrs["summary"]["examples_scored"] == 0
    assert list(again["id"]) == [str(i) for i in range(10)]


def test_ids_input_columns_and_hashing(applicants):
    frame = applicants.assign(key=[f"a{i}" for i in range(10)], note="x")
    table = score("demo-credit", frame.iloc[:3], Job(methods=["occlusion"], id_column="key",
                  hash_inputs=True), show_progress=False)
    plain = score("demo-credit", applicants.iloc[:3], Job(methods=["occlusion"]),
                  show_progress=False)
    assert list(table["id"]) == ["a0", "a1", "a2"]
    assert list(table["input"]) == ["sha256:" + hashlib.sha256(s.encode()).hexdigest()
                                    for s in plain["input"]]
    assert json.loads(plain["input"][0]) == applicants.iloc[0].to_dict()
    assert list(table["attributions"]) == list(plain["attributions"])


def test_unknown_columns_raise_a_typed_error_listing_the_columns(applicants):
    with pytest.raises(InvalidParameterError) as info:
        score("demo-credit", applicants, Job(methods=["occlusion"], id_column="applicant"))
    assert info.value.parameter == "id_column"
    assert str(info.value).startswith("The 'id_column' parameter of score names column "
                                      "'applicant', which the data set does not have. "
                                      "Available columns: checking_status, duration,")
    with pytest.raises(InvalidParameterError, match="names column 'income'") as info:
        score("demo-credit", applicants,
              Job(methods=["occlusion"], input_columns=["age", "income"]))
    assert info.value.parameter == "input_columns"


def test_argument_errors(applicants, tmp_path):
    with pytest.raises(InvalidParameterError, match="'engine' parameter of score"):
        score("demo-credit", applicants, engine="dask")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="resume=True needs an output"):
        score("demo-credit", applicants, resume=True)
    with pytest.raises(InvalidParameterError, match=r"must end in \.parquet or \.jsonl"):
        score("demo-credit", applicants, output=tmp_path / "s.csv")
    with pytest.raises(InvalidParameterError, match="'missing.csv' does not exist"):
        score("demo-credit", "missing.csv")
    with pytest.raises(xai.exceptions.UnknownNameError, match="Unknown metric"):
        score("demo-credit", applicants, Job(metrics=["faithfullness"]))


def test_dataset_folder_needs_datasets(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets -> ImportError
    with pytest.raises(MissingDependencyError, match="requires the datasets package"):
        score("demo-credit", tmp_path)


def test_a_datasets_like_object_is_read_as_a_table(applicants):
    class FakeDataset:  # the duck type of datasets.Dataset
        column_names = list(applicants.columns)

        def to_pandas(self) -> pd.DataFrame:
            return applicants.iloc[:2]

    table = score("demo-credit", FakeDataset(), Job(methods=["occlusion"]), show_progress=False)
    plain = score("demo-credit", applicants.iloc[:2], Job(methods=["occlusion"]),
                  show_progress=False)
    pd.testing.assert_frame_equal(_values(table), _values(plain))


def test_texts_from_a_list(tiny_bert, texts):
    table = score(tiny_bert, [*texts, ""], Job(methods=["occlusion"], chunk_size=2),
                  show_progress=False)
    exp = xai.explain(tiny_bert, texts[1], method="occlusion", random_state=0)
    assert list(table["status"]) == ["ok", "ok", "ok", "error"]
    assert table["input"][1] == texts[1]
    assert table["feature_names"][1] == list(exp.feature_names[0])
    torch.testing.assert_close(torch.tensor(table["attributions"][1]), exp.values[0, 0],
                               rtol=1e-5, atol=1e-6)


def test_writing_a_chunk_reads_each_rows_feature_names_a_bounded_number_of_times(monkeypatch):
    """Writing the rows of a chunk looks up each row's own feature names: linear in the chunk,
    not quadratic (it once rebuilt every row's names for each row: 100 million lookups and a
    minute for a 10,000-row chunk)."""
    from xai.features.tensor import _Numbered

    _, x_test, _, _ = split_credit(random_state=0)
    rows = x_test.iloc[:120].reset_index(drop=True)
    calls = {"n": 0}
    names = _Numbered.feature_names.fget

    def counted(self):
        calls["n"] += 1
        return names(self)

    monkeypatch.setattr(_Numbered, "feature_names", property(counted))
    table = score("demo-credit", rows, Job(methods=["occlusion"], chunk_size=120),
                  show_progress=False)
    assert (table["status"] == "ok").all()
    assert table["feature_names"].map(len).eq(rows.shape[1]).all()
    assert calls["n"] <= 5 * len(rows)  # the quadratic version: 120 * 120 = 14,400
