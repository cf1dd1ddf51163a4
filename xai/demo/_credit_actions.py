"""What a demo credit applicant can change: the action set of the demo's recourse section.

The demo credit model (`xai.demo._credit`) reads the 20 columns of `load_credit`: integer codes
for the categorical attributes (decoded by `CREDIT_CATEGORIES`) and numbers for the others. This
module states, column by column, which of them an applicant can act on, in which direction and by
how much, as an `xai.ActionSet` over exactly those columns. Types come from the data (integer
codes and whole numbers are ``int``, telephone is ``bool``) and bounds are the minimum and maximum
of all 1,000 rows, so every applicant of the data lies inside the set.

Choices (following the spirit of Cheon et al.'s ``complex_nD`` German credit set, ICLR 2025, on
the raw codes rather than their indicator encoding):

=======================  ===============================================================
column                   choice
=======================  ===============================================================
age                      immutable (protected; moves only through ``residence_since``)
personal_status          immutable (sex and marital status: protected)
foreign_worker           immutable (protected)
credit_history           immutable (the past cannot be changed)
purpose                  immutable (what the loan is for is the applicant's need)
employment               immutable (tenure brackets change only with time and span
                         several years, so no whole-number link to age fits)
property                 immutable (acquiring property is not a short-term action)
other_installment_plans  immutable (codes bank, stores, none are not ordered: an
                         "increase" bank -> stores is not an action)
housing                  immutable (moving home is not recourse for a loan)
job                      immutable (a career, not an action)
num_dependents           immutable (people liable to be maintained)
checking_status          +1, one bracket per action: < 0 DM -> 0-200 DM -> >= 200 DM
savings                  +1, one bracket per action: < 100 -> 100-500 -> 500-1000 -> >= 1000 DM
duration                 both ways, at most 12 months per action (a shorter or longer term)
credit_amount            decrease only, by at most 5,000 DM (ask for a smaller loan)
installment_rate         decrease only (a smaller installment, % of disposable income)
other_debtors            +1 (find a co-applicant or a guarantor; never drop one)
existing_credits         decrease only (pay off credits at this bank)
residence_since          +1, and each year at the residence also adds a year to age
                         (``DirectionalLinkage(["residence_since", "age"])``, as in the paper)
telephone                +1 (register a telephone)
=======================  ===============================================================

Limitation of the raw codes: the last code of ``checking_status`` (3, no checking account) and of
``savings`` (4, unknown / no savings account) is not an improvement, but it sits at the top of the
code range, and an `ActionSet` has per-feature bounds and directions only. One bracket per action
(``step_ub = 1``) keeps it out of reach for everyone but the applicants already in the top balance
bracket (>= 200 DM checking, >= 1,000 DM savings), whose one upward "step" is to the no-account
code; the demo's reasons table shows those scores as they are. An applicant with no account
cannot move (their code is the upper bound).

``xai/demo/data/credit_actions.json`` is this set written by `ActionSet.save`; rewrite it with
``python -m xai.demo._credit_actions`` after changing the choices (a test checks the two agree).
"""

from __future__ import annotations

from pathlib import Path

import xai

from ._data import DATA_DIR, load_credit

__all__ = ["CREDIT_ACTIONS_PATH", "CREDIT_IMMUTABLE", "credit_action_set", "load_credit_actions"]

CREDIT_ACTIONS_PATH: Path = DATA_DIR / "credit_actions.json"

#: Columns no applicant can change directly (the first three are protected attributes).
CREDIT_IMMUTABLE: tuple[str, ...] = (
    "age", "personal_status", "foreign_worker", "credit_history", "purpose", "employment",
    "property", "other_installment_plans", "housing", "job", "num_dependents",
)


def credit_action_set() -> xai.ActionSet:
    """The action set of the demo credit model's 20 columns, built from the data (see the module
    docstring for every choice).

    Returns
    -------
    xai.ActionSet
        Features in the order of `CREDIT_COLUMNS`; one `DirectionalLinkage`
        (``residence_since`` -> ``age``).
    """
    X, _ = load_credit()
    actions = xai.ActionSet.from_dataframe(X)
    for name in CREDIT_IMMUTABLE:
        actions[name].actionable = False
    for name in ("checking_status", "savings"):  # one balance bracket per action, upwards
        actions[name].step_direction = +1
        actions[name].step_ub = 1
    actions["duration"].step_lb, actions["duration"].step_ub = -12, 12
    actions["credit_amount"].step_direction = -1
    actions["credit_amount"].step_lb = -5000
    for name in ("installment_rate", "existing_credits"):
        actions[name].step_direction = -1
    for name in ("other_debtors", "residence_since", "telephone"):
        actions[name].step_direction = +1
    actions.add_constraint(xai.DirectionalLinkage(["residence_since", "age"], scales=[1, 1]))
    return actions


def load_credit_actions() -> xai.ActionSet:
    """The shipped ``xai/demo/data/credit_actions.json`` (equal to `credit_action_set`)."""
    return xai.ActionSet.load(CREDIT_ACTIONS_PATH)


if __name__ == "__main__":  # pragma: no cover - rewrites the shipped file
    credit_action_set().save(CREDIT_ACTIONS_PATH)
    print(f"Wrote {CREDIT_ACTIONS_PATH}")
