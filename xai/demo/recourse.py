"""German credit for recourse: the encoding, action set and models of Cheon et al. (ICLR 2025).

Cheon, Wernerfelt, Friedler and Ustun ("Feature Responsiveness Scores: Model-Agnostic
Explanations for Recourse", ICLR 2025) audit the reasons that SHAP and LIME give to denied
applicants of the German credit data under the ``complex_nD`` action set. This module rebuilds
their set-up from the data vendored with the demo (`xai.demo._data.load_credit`):

* `load_german_recourse`: the 36 indicator and integer columns of their
  ``setup_dataset_actionset_german.py`` (``ustunb/reachml``, ``research/iclr2025/experiment``),
  with snake_case names;
* `german_action_set`: their ``complex_nD`` actionability constraints as an `xai.ActionSet`;
* `train_german_models`: a logistic regression and a gradient-boosted tree ensemble on an 80/20
  stratified split.

``bench/responsiveness_table.py`` uses them to tabulate how many of the top-4 reasons are
unresponsive; the figures are in ``docs/responsiveness_german.json``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from ._data import CREDIT_CATEGORIES, load_credit

__all__ = [
    "GERMAN_IMMUTABLE",
    "GermanModels",
    "ReasonAudit",
    "audit_reasons",
    "german_action_set",
    "load_german_recourse",
    "train_german_models",
]


def _codes(column: str, *texts: str) -> list[int]:
    """Integer codes of ``load_credit``'s ``column`` for the decoded category texts ``texts``."""
    categories = CREDIT_CATEGORIES[column]
    missing = [t for t in texts if t not in categories]
    if missing:  # the vendored values map changed: fail loudly rather than encode silently wrong
        msg = f"Categories {missing} of {column!r} are not in the vendored values map {categories}."
        raise ValueError(msg)
    return [categories.index(t) for t in texts]


def _is(raw: pd.DataFrame, column: str, *texts: str) -> np.ndarray:
    """0/1 column: whether ``raw[column]`` holds one of the categories ``texts``."""
    out: np.ndarray = raw[column].isin(_codes(column, *texts)).to_numpy(dtype=np.float64)
    return out


def load_german_recourse() -> tuple[pd.DataFrame, np.ndarray]:
    """German credit encoded as in Cheon et al.'s ICLR 2025 experiments (36 numeric columns).

    The encoding follows ``process_dataset`` of reachml's
    ``research/iclr2025/experiment/setup_dataset_actionset_german.py`` (the same as the ICLR
    2024 script), column for column, re-derived from the UCI codes of `load_credit`:

    * ``age``, ``years_at_residence`` (1-4), ``liable_persons`` (1-2), ``loan_rate`` (installment
      rate, 1-4): integers, as in the raw data.
    * ``is_male`` (male divorced, single or married), ``is_single`` (male or female single; no
      row of the UCI file is a single female), ``is_foreign_worker``.
    * ``housing_is_renter``/``_owner``/``_free`` and ``job_is_unskilled`` (UCI A171 and A172,
      unemployed/unskilled, resident or not)/``_skilled``/``_management``: one-hot groups.
    * ``years_employed_geq_1``: employed for at least a year.
    * ``credit_amount_geq_{1000,2000,5000,10000}``: thermometer of the loan amount (DM);
      ``loan_duration_leq_6`` and ``loan_duration_geq_{12,24,36}`` (months).
    * ``has_guarantor`` (other debtors: guarantor; a co-applicant is not encoded, as in the paper).
    * ``loan_for_{business,education,car,home}``: purpose (education includes retraining, car
      new or used, home = furniture, radio/TV, domestic appliances or repairs); vacation and
      "others" are all zeros (the paper drops that column too).
    * ``no_credit_history``, ``history_of_late_payments``, ``history_of_delinquency`` (UCI
      "critical account"), ``history_of_bank_installments``, ``history_of_store_installments``
      (other installment plans at a bank or at stores).
    * ``checking_account_exists``, ``checking_balance_geq_0`` (0-200 DM or more);
      ``savings_account_exists``, ``savings_balance_geq_100``: two 2-level thermometers.

    Differences from the paper: none in the columns. Our raw file has attributes the paper's
    encoding leaves out (property, telephone, number of existing credits, a co-applicant, the
    finer checking/savings/employment levels); they are left out here too, so that the action
    set matches theirs. The paper's raw CSV is reachml's own processed copy of the same UCI file,
    so individual rows may differ in edge cases we cannot check (it is not vendored).

    Returns
    -------
    X : pandas.DataFrame
        1,000 rows x 36 float64 columns (0/1 indicators and the four integer columns above).
    y : numpy.ndarray
        int64 of shape (1000,): 1 = good credit risk (approved), 0 = bad.
    """
    raw, y = load_credit()
    cols: dict[str, np.ndarray] = {}
    cols["age"] = raw["age"].to_numpy(dtype=np.float64)
    cols["is_male"] = _is(raw, "personal_status", "male : divorced/separated", "male : single",
                          "male : married/widowed")
    cols["is_single"] = _is(raw, "personal_status", "male : single", "female : single")
    cols["is_foreign_worker"] = _is(raw, "foreign_worker", "yes")
    cols["years_at_residence"] = raw["residence_since"].to_numpy(dtype=np.float64)
    cols["liable_persons"] = raw["num_dependents"].to_numpy(dtype=np.float64)
    for name, text in (("renter", "rent"), ("owner", "own"), ("free", "for free")):
        cols[f"housing_is_{name}"] = _is(raw, "housing", text)
    jobs = CREDIT_CATEGORIES["job"]
    cols["job_is_unskilled"] = _is(raw, "job", jobs[0], jobs[1])
    cols["job_is_skilled"] = _is(raw, "job", jobs[2])
    cols["job_is_management"] = _is(raw, "job", jobs[3])
    employment = CREDIT_CATEGORIES["employment"]
    cols["years_employed_geq_1"] = _is(raw, "employment", *employment[2:])
    amount = raw["credit_amount"].to_numpy()
    for t in (1000, 2000, 5000, 10000):
        cols[f"credit_amount_geq_{t}"] = (amount >= t).astype(np.float64)
    duration = raw["duration"].to_numpy()
    cols["loan_duration_leq_6"] = (duration <= 6).astype(np.float64)
    for t in (12, 24, 36):
        cols[f"loan_duration_geq_{t}"] = (duration >= t).astype(np.float64)
    cols["loan_rate"] = raw["installment_rate"].to_numpy(dtype=np.float64)
    cols["has_guarantor"] = _is(raw, "other_debtors", "guarantor")
    purpose = CREDIT_CATEGORIES["purpose"]
    cols["loan_for_business"] = _is(raw, "purpose", "business")
    cols["loan_for_education"] = _is(raw, "purpose", "education", "retraining")
    cols["loan_for_car"] = _is(raw, "purpose", purpose[0], purpose[1])
    cols["loan_for_home"] = _is(raw, "purpose", *purpose[2:6])
    history = CREDIT_CATEGORIES["credit_history"]
    cols["no_credit_history"] = _is(raw, "credit_history", history[0])
    cols["history_of_late_payments"] = _is(raw, "credit_history", history[3])
    cols["history_of_delinquency"] = _is(raw, "credit_history", history[4])
    cols["history_of_bank_installments"] = _is(raw, "other_installment_plans", "bank")
    cols["history_of_store_installments"] = _is(raw, "other_installment_plans", "stores")
    checking = CREDIT_CATEGORIES["checking_status"]
    cols["checking_account_exists"] = 1.0 - _is(raw, "checking_status", checking[3])
    cols["checking_balance_geq_0"] = _is(raw, "checking_status", checking[1], checking[2])
    savings = CREDIT_CATEGORIES["savings"]
    cols["savings_account_exists"] = 1.0 - _is(raw, "savings", savings[4])
    cols["savings_balance_geq_100"] = _is(raw, "savings", *savings[1:4])
    return pd.DataFrame(cols), y


#: Features no action can change directly (``complex_nD`` of the paper). Age may still move as a
#: consequence of the directional linkages.
GERMAN_IMMUTABLE: tuple[str, ...] = (
    "age", "is_male", "is_single", "is_foreign_worker", "liable_persons",
    "housing_is_renter", "housing_is_owner", "housing_is_free",
    "job_is_unskilled", "job_is_skilled", "job_is_management",
    "credit_amount_geq_1000", "credit_amount_geq_2000", "credit_amount_geq_5000",
    "credit_amount_geq_10000",
    "loan_duration_leq_6", "loan_duration_geq_12", "loan_duration_geq_24", "loan_duration_geq_36",
    "loan_rate",
    "loan_for_business", "loan_for_education", "loan_for_car", "loan_for_home",
    "no_credit_history", "history_of_late_payments", "history_of_delinquency",
)


def german_action_set(X: pd.DataFrame) -> Any:
    """The ``complex_nD`` action set of Cheon et al. (ICLR 2025) for `load_german_recourse`'s data.

    Types and bounds come from ``X`` (`xai.ActionSet.from_dataframe`); then, feature group by
    feature group (reachml's ``simple_1D`` -> ``complex_1D`` -> ``complex_nD``):

    * **Protected attributes** ``age``, ``is_male``, ``is_single``, ``is_foreign_worker``:
      immutable (nobody should be told to change them, and the issue requires it). Age is still
      moved by the two linkages below; the paper also gives age ``step_direction=+1``, which our
      ActionSet refuses on an immutable feature and which the linkages (positive scales) imply.
    * **Household** ``liable_persons``, ``housing_is_*``, ``job_is_*``: immutable, as in the
      paper (not something one changes to get a loan). Housing and job are one-hot groups in the
      data; a `xai.OneHot` constraint is added for each, which changes nothing while they are
      immutable but keeps them moving as a unit if a user makes them actionable.
    * **Loan terms** ``credit_amount_geq_*``, ``loan_duration_*``, ``loan_rate`` and **purpose**
      ``loan_for_*``: immutable, as in the paper (the applicant is judged on the loan asked for).
    * **Credit history** ``no_credit_history``, ``history_of_late_payments``,
      ``history_of_delinquency``: immutable (the past cannot be changed).
    * **Installments** ``history_of_bank_installments``, ``history_of_store_installments``:
      actionable, increase only (``step_direction=+1``: one can take up an installment plan, not
      erase one), as in the paper.
    * ``has_guarantor``: actionable, increase only (find a guarantor).
    * ``years_at_residence``: actionable, increase only, bounds widened to [0, 7] and at most 2
      years per action (``step_ub=2``), as in the paper; a
      ``DirectionalLinkage(["years_at_residence", "age"], scales=[1, 1])`` ages the applicant by
      the years waited.
    * ``years_employed_geq_1``: actionable, increase only (keep a job for a year), with
      ``DirectionalLinkage(["years_employed_geq_1", "age"], scales=[1, 1])``: reaching one year
      of employment ages the applicant by one year.
    * **Accounts** ``checking_account_exists`` -> ``checking_balance_geq_0`` and
      ``savings_account_exists`` -> ``savings_balance_geq_100``: each pair a
      ``Thermometer(..., step_direction=+1)`` (open an account, then raise its balance; never
      go down a level), with both features increase-only as in ``complex_1D``.

    With this set only 9 of the 36 features can be acted on (27 are immutable).

    Parameters
    ----------
    X : pandas.DataFrame
        Data with `load_german_recourse`'s columns (all of them, or a subset of rows), from which
        types and bounds are inferred.

    Returns
    -------
    xai.ActionSet
    """
    import xai

    actions = xai.ActionSet.from_dataframe(X)
    for name in GERMAN_IMMUTABLE:
        actions[name].actionable = False
    for name in ("history_of_bank_installments", "history_of_store_installments",
                 "has_guarantor", "years_employed_geq_1", "checking_account_exists",
                 "checking_balance_geq_0", "savings_account_exists", "savings_balance_geq_100"):
        actions[name].step_direction = +1
    residence = actions["years_at_residence"]
    residence.lb = 0
    residence.ub = 7
    residence.step_ub = 2
    residence.step_direction = +1
    actions.add_constraint(xai.OneHot(["housing_is_renter", "housing_is_owner", "housing_is_free"]))
    actions.add_constraint(xai.OneHot(["job_is_unskilled", "job_is_skilled", "job_is_management"]))
    actions.add_constraint(xai.DirectionalLinkage(["years_at_residence", "age"], scales=[1, 1]))
    actions.add_constraint(xai.DirectionalLinkage(["years_employed_geq_1", "age"], scales=[1, 1]))
    actions.add_constraint(xai.Thermometer(["checking_account_exists", "checking_balance_geq_0"],
                                           step_direction=+1))
    actions.add_constraint(xai.Thermometer(["savings_account_exists", "savings_balance_geq_100"],
                                           step_direction=+1))
    return actions


@dataclasses.dataclass(frozen=True)
class GermanModels:
    """What `train_german_models` returns.

    Attributes
    ----------
    models : dict of str to estimator
        ``"logistic_regression"`` (StandardScaler + LogisticRegression pipeline) and
        ``"gradient_boosting"`` (HistGradientBoostingClassifier), fitted on ``X_train``.
    X_train, X_test : pandas.DataFrame
        The 80/20 stratified split of `load_german_recourse` (800 and 200 rows).
    y_train, y_test : numpy.ndarray
    test_accuracy : dict of str to float
        Accuracy of each model on the test part.
    """

    models: dict[str, Any]
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: np.ndarray
    y_test: np.ndarray
    test_accuracy: dict[str, float]


def train_german_models(random_state: int = 0) -> GermanModels:
    """Fit the two models of the reproduction on an 80/20 stratified split (seconds, deterministic).

    Parameters
    ----------
    random_state : int, default=0
        Seed of the split and of the gradient-boosting model (logistic regression is
        deterministic).

    Returns
    -------
    GermanModels
    """
    X, y = load_german_recourse()
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.2, stratify=y, random_state=random_state)
    logistic: Pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    boosting = HistGradientBoostingClassifier(random_state=random_state)
    models: dict[str, Any] = {"logistic_regression": logistic, "gradient_boosting": boosting}
    accuracy: dict[str, float] = {}
    for name, model in models.items():
        model.fit(X_train, y_train)
        accuracy[name] = float(np.mean(model.predict(X_test) == y_test))
    return GermanModels(models=models, X_train=X_train, X_test=X_test, y_train=y_train,
                        y_test=y_test, test_accuracy=accuracy)


@dataclasses.dataclass(frozen=True)
class ReasonAudit:
    """What `audit_reasons` found for one model and one explanation method.

    Attributes
    ----------
    method : str
        The explanation method (``"kernel_shap"``, ``"lime"``).
    attributions : numpy.ndarray
        (n, d) attributions of the approval score (output 1) for the denied applicants.
    responsiveness : numpy.ndarray
        (n, d) responsiveness of every feature for every applicant (the metric's
        ``extras["responsiveness"]``).
    scores : numpy.ndarray
        (n,) share of each applicant's top-k reasons that are responsive (NaN for an applicant
        without reasons).
    fixed_prediction : numpy.ndarray
        (n,) bool: no feasible joint action gets the applicant approved.
    summary : dict of str to float
        The metric's ``extras["summary"]`` (``r_all_invalid``, ``r_denied_fixed``, ...).
    seconds_explain, seconds_metric : float
        Wall time of the explanation and of the metric.
    """

    method: str
    attributions: np.ndarray
    responsiveness: np.ndarray
    scores: np.ndarray
    fixed_prediction: np.ndarray
    summary: dict[str, float]
    seconds_explain: float
    seconds_metric: float


def audit_reasons(
    model: Any, X_denied: pd.DataFrame, actions: Any, *, method: str, background: pd.DataFrame,
    top_k: int = 4, random_state: int = 0,
) -> ReasonAudit:
    """Explain denied applicants with ``method`` and score their top-k reasons' responsiveness.

    The explanation is of the approval score (``target=1``), with features removed towards the
    mean of ``background`` (``baseline="mean"``): with the zeros baseline every indicator at 0
    would get an attribution of exactly 0 and could never be a reason. The metric is
    ``metrics.evaluate(exp, model, ["responsiveness"], action_set=actions, top_k=top_k)``.

    Parameters
    ----------
    model : fitted scikit-learn classifier or pipeline
    X_denied : pandas.DataFrame
        Applicants the model denies (predicts 0), `load_german_recourse`'s columns.
    actions : xai.ActionSet
    method : str
        An attribution method of `xai.explain` (``"kernel_shap"``, ``"lime"``, ...).
    background : pandas.DataFrame
        Training rows; their mean is the removal baseline.
    top_k : int, default=4
    random_state : int, default=0

    Returns
    -------
    ReasonAudit
    """
    import time

    import metrics
    import xai

    start = time.perf_counter()
    exp = xai.explain(model, X_denied, method=method, target=1, baseline="mean",
                      adapter_options={"background": background}, random_state=random_state)
    middle = time.perf_counter()
    result = metrics.evaluate(exp, model, ["responsiveness"], action_set=actions, top_k=top_k,
                              random_state=random_state)["responsiveness"]
    end = time.perf_counter()
    extras = result.extras
    return ReasonAudit(
        method=method,
        attributions=exp.values[:, 0, :].detach().cpu().numpy().astype(np.float64),
        responsiveness=np.asarray(extras["responsiveness"], dtype=np.float64),
        scores=np.asarray(result.scores, dtype=np.float64).reshape(-1),
        fixed_prediction=np.asarray(extras["fixed_prediction"], dtype=bool).reshape(-1),
        summary={str(k): float(v) for k, v in dict(extras["summary"]).items()},
        seconds_explain=middle - start, seconds_metric=end - middle)
