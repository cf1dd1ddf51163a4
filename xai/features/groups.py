"""Feature groups: several input elements switched on and off together as one feature.

A group spec is what a captum user passes as ``feature_mask`` (an int id per element, shared by
the batch or one per example), or a dict of group name to columns for tabular inputs. It is
resolved once, against the inputs, into the ``feature_mask`` and names of each example's
:class:`~xai.features.TensorFeatures`; every method and metric then removes whole groups
through the feature space.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from .._validation import NONE_OK, ArrayLike, Constraint, InstanceOf
from ..exceptions import InvalidParameterError

__all__ = ["FEATURE_GROUPS", "Groups", "group_features", "resolve_groups",
           "resolve_shared_groups"]

#: The constraint of every method's ``feature_groups`` field.
FEATURE_GROUPS: tuple[Constraint, ...] = (
    NONE_OK, InstanceOf((Mapping,), "a dict of group name to columns"), ArrayLike())

#: One example's groups: an int id per element (shape of the example, ids 0..k-1), k names.
Groups = tuple[torch.Tensor, tuple[str, ...]]


def resolve_groups(groups: Any, *, n: int, shape: Sequence[int], columns: Sequence[str] | None,
                   owner: str) -> list[Groups] | None:
    """The groups of each of ``n`` examples of ``shape`` (None when ``groups`` is None).

    Parameters
    ----------
    groups : None, dict of str to columns, or array-like of int
        A dict maps each group's name to its columns (names or positions; tabular inputs only);
        columns it does not list stay features of their own. An int array gives each element
        its group id: of one example's shape (shared), of shape (1, *shape) (shared), or of
        shape (n, *shape) (one mask per example). Ids need not be consecutive; groups are
        ordered by id.
    n, shape : the number of examples and one example's shape
    columns : the inputs' column names, if any (they name groups and resolve dict entries)
    owner : the method, for error messages
    """
    if groups is None:
        return None
    shape = tuple(int(s) for s in shape)
    if isinstance(groups, Mapping):
        return [_from_mapping(groups, shape, columns, owner)] * n
    ids = _rows_of_ids(groups, n, shape, owner, dict_ok=len(shape) == 1)
    if ids.shape[0] == 1:
        return [_from_ids(ids[0], columns, owner)] * n
    return [_from_ids(ids[i], columns, owner) for i in range(n)]


def resolve_shared_groups(groups: Any, *, n: int, shapes: Sequence[Sequence[int]],
                          owner: str) -> list[torch.Tensor] | None:
    """Group ids over several input tensors (captum's tuple ``feature_mask``): one int array per
    input, accepted in the shapes :func:`resolve_groups` accepts; equal ids in different inputs
    form one feature. Returns one (1 or n, *shape) id tensor per input, relabelled to 0..k-1
    in id order over all inputs together (None when ``groups`` is None)."""
    if groups is None:
        return None
    if not isinstance(groups, tuple) or len(groups) != len(shapes):
        msg = (f"The 'feature_groups' parameter of {owner} must be a tuple of {len(shapes)} int "
               "arrays for a model that takes several input tensors (one group id per element "
               "of each input; equal ids across inputs form one feature).")
        raise _error(msg, owner, type(groups).__name__)
    raw = [_rows_of_ids(g, n, tuple(int(s) for s in shape), f"{owner} (input {k})",
                        dict_ok=False)
           for k, (g, shape) in enumerate(zip(groups, shapes, strict=True))]
    unique = torch.unique(torch.cat([r.reshape(-1) for r in raw]), sorted=True)
    return [torch.searchsorted(unique, r.reshape(-1)).reshape(r.shape) for r in raw]


def _rows_of_ids(groups: Any, n: int, shape: tuple[int, ...], owner: str, *,
                 dict_ok: bool) -> torch.Tensor:
    """The group ids as (1, *shape) (shared by every example) or (n, *shape) (one per
    example), or the error naming the accepted shapes."""
    ids = _as_ids(groups, owner)
    if tuple(ids.shape) in (shape, (1, *shape)):
        return ids.reshape(1, *shape)
    if tuple(ids.shape) == (n, *shape):
        return ids
    accepted = " or ".join(str(s) for s in dict.fromkeys([shape, (1, *shape), (n, *shape)]))
    msg = (f"The 'feature_groups' parameter of {owner} has shape {tuple(ids.shape)}, but the "
           f"inputs are {n} example(s) of shape {shape}. Pass one group id per element: an int "
           f"array of shape {accepted}" + (", or a dict of group name to columns." if
                                           dict_ok else "."))
    raise _error(msg, owner, tuple(ids.shape))


def _error(msg: str, owner: str, value: Any) -> InvalidParameterError:
    return InvalidParameterError(msg, owner=owner, parameter="feature_groups", value=value)


def _as_ids(groups: Any, owner: str) -> torch.Tensor:
    """An int tensor of group ids (integral floats accepted), all >= 0."""
    try:
        arr = groups.detach().cpu().numpy() if isinstance(groups, torch.Tensor) else \
            np.asarray(groups)
    except (TypeError, ValueError) as err:
        msg = (f"The 'feature_groups' parameter of {owner} could not be read as an int array "
               f"({err}). Pass an int array of group ids, or a dict of group name to columns.")
        raise _error(msg, owner, type(groups).__name__) from err
    integral = arr.dtype.kind in "iu" or (arr.dtype.kind == "f" and bool(
        np.all(np.isfinite(arr))) and bool(np.all(arr == np.round(arr))))
    if not integral:
        msg = (f"The 'feature_groups' parameter of {owner} must hold integer group ids; got "
               f"dtype {arr.dtype}. Pass one int id per input element (elements with the same "
               "id form one feature).")
        raise _error(msg, owner, str(arr.dtype))
    if arr.size and arr.min() < 0:
        msg = (f"The 'feature_groups' parameter of {owner} holds the negative id {arr.min()}. "
               "Group ids are non-negative ints.")
        raise _error(msg, owner, int(arr.min()))
    return torch.from_numpy(arr.astype(np.int64))


def _from_ids(ids: torch.Tensor, columns: Sequence[str] | None, owner: str) -> Groups:
    """Relabel ids to 0..k-1 in id order; names from the member columns, else "group <id>"."""
    if ids.numel() == 0:
        return ids.long(), ()
    unique, dense = torch.unique(ids.reshape(-1), sorted=True, return_inverse=True)
    names = []
    for k, gid in enumerate(unique.tolist()):
        members = (dense == k).nonzero().reshape(-1).tolist()
        if columns is not None and ids.dim() == 1:
            names.append("+".join(str(columns[j]) for j in members))
        else:
            names.append(f"group {gid}")
    return dense.reshape(ids.shape), tuple(names)


def _from_mapping(groups: Mapping[Any, Any], shape: tuple[int, ...],
                  columns: Sequence[str] | None, owner: str) -> Groups:
    """Dict groups over the columns of a 1-d example; unlisted columns stay single features."""
    if len(shape) != 1:
        msg = (f"The 'feature_groups' parameter of {owner} is a dict, which names columns of "
               f"tabular inputs, but one example has shape {shape}. Pass an int array of group "
               f"ids of shape {shape} instead.")
        raise _error(msg, owner, "dict")
    d = shape[0]
    names = [str(c) for c in columns] if columns is not None else [f"x{j}" for j in range(d)]
    position = {c: j for j, c in enumerate(names)}
    owner_of: dict[int, str] = {}
    for name, members in groups.items():
        if not isinstance(name, str):
            msg = (f"The 'feature_groups' parameter of {owner} has the key {name!r}; group names "
                   "must be strings.")
            raise _error(msg, owner, name)
        listed = [members] if isinstance(members, str | int | np.integer) else list(members)
        if not listed:
            msg = f"The group {name!r} of 'feature_groups' ({owner}) lists no column."
            raise _error(msg, owner, name)
        for col in listed:
            j = _column(col, position, d, name, owner)
            if j in owner_of:
                msg = (f"The column {names[j]!r} is in two groups of 'feature_groups' ({owner}): "
                       f"{owner_of[j]!r} and {name!r}. Put each column in one group.")
                raise _error(msg, owner, names[j])
            owner_of[j] = name
    ids = torch.empty(d, dtype=torch.long)
    out_names: list[str] = []
    seen: dict[str, int] = {}
    for j in range(d):  # groups in the order of their first column
        label = owner_of.get(j, names[j])
        key = f"g:{label}" if j in owner_of else f"c:{j}"
        if key not in seen:
            seen[key] = len(out_names)
            out_names.append(label)
        ids[j] = seen[key]
    if len(set(out_names)) != len(out_names):
        clash = sorted({x for x in out_names if out_names.count(x) > 1})
        msg = (f"The group name {clash[0]!r} of 'feature_groups' ({owner}) is also the name of a "
               "column left out of every group. Rename the group.")
        raise _error(msg, owner, clash[0])
    return ids, tuple(out_names)


def _column(col: Any, position: Mapping[str, int], d: int, group: str, owner: str) -> int:
    if isinstance(col, str):
        if col not in position:
            shown = list(position)[:10]
            msg = (f"The group {group!r} of 'feature_groups' ({owner}) lists the column {col!r}, "
                   f"which the inputs do not have. Columns: {shown}"
                   + (f" ... ({len(position)} in all)" if len(position) > 10 else "") + ".")
            raise _error(msg, owner, col)
        return position[col]
    if isinstance(col, int | np.integer) and not isinstance(col, bool) and 0 <= int(col) < d:
        return int(col)
    msg = (f"The group {group!r} of 'feature_groups' ({owner}) lists {col!r}; list column names "
           f"or positions in 0..{d - 1}.")
    raise _error(msg, owner, col)


def group_features(features: Sequence[Any], groups: Any, *, owner: str) -> tuple[Any, ...]:
    """Text features (one space per example, of d_i words or tokens each) merged into groups.

    ``groups`` gives each feature of each example a group id: one int sequence per example
    (lengths d_i), an (n, d) array when every example has d features, or one sequence of length
    d shared by every example. A dict is refused: words have no column names.
    """
    if groups is None:
        return tuple(features)
    n = len(features)
    widths = [f.n_features for f in features]
    if isinstance(groups, Mapping):
        msg = (f"The 'feature_groups' parameter of {owner} is a dict, which names columns of "
               "tabular inputs. For text pass one list of group ids per text, one id per "
               "feature (word or token).")
        raise _error(msg, owner, "dict")
    ragged = (isinstance(groups, Sequence) and len(groups) == n and all(
        isinstance(g, Sequence | np.ndarray | torch.Tensor) and not isinstance(g, str)
        for g in groups))
    if ragged and not (len(set(widths)) == 1 and _uniform(groups)):
        per = []
        for i, (fs, g) in enumerate(zip(features, groups, strict=True)):
            ids = _as_ids(g, owner)
            if tuple(ids.shape) != (fs.n_features,):
                msg = (f"The 'feature_groups' parameter of {owner} gives {tuple(ids.shape)} ids "
                       f"for text {i}, which has {fs.n_features} features. Pass one group id "
                       "per feature (word or token) of each text.")
                raise _error(msg, owner, tuple(ids.shape))
            per.append(fs.grouped(_from_ids(ids, None, owner)[0]))
        return tuple(per)
    if len(set(widths)) != 1:
        msg = (f"The 'feature_groups' parameter of {owner} is one array, but the texts have "
               f"different numbers of features ({sorted(set(widths))}). Pass one list of group "
               "ids per text.")
        raise _error(msg, owner, "array")
    resolved = resolve_groups(groups, n=n, shape=(widths[0],), columns=None, owner=owner)
    assert resolved is not None  # groups is not None
    return tuple(fs.grouped(ids) for fs, (ids, _) in zip(features, resolved, strict=True))


def _uniform(groups: Sequence[Any]) -> bool:
    return len({len(g) for g in groups}) == 1
