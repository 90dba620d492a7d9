import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lgenet.data.splits import assign_folds
from lgenet.errors import DataError


@settings(max_examples=60, deadline=None)
@given(
    n_pos=st.integers(4, 40),
    n_neg=st.integers(4, 80),
    k=st.integers(2, 4),
    seed=st.integers(0, 10_000),
)
def test_folds_partition_patients_and_are_stratified(n_pos, n_neg, k, seed):
    ids = [f"P{i:03d}" for i in range(n_pos + n_neg)]
    rng = np.random.default_rng(seed)
    y = rng.permutation([1] * n_pos + [0] * n_neg)
    folds = assign_folds(ids, y, n_splits=k, random_state=seed)
    assert set(folds) == set(ids)  # every patient in exactly one test fold
    assert set(folds.values()) == set(range(k))
    lab = dict(zip(ids, y))
    for fold in range(k):
        test = {p for p, f in folds.items() if f == fold}
        train = set(ids) - test
        assert not test & train
        pos = sum(lab[p] for p in test)
        # stratified: each fold's positives within one of the expected share
        assert abs(pos - n_pos / k) <= 1
        assert pos >= 1


def test_assignment_does_not_depend_on_row_order():
    ids = [f"P{i:02d}" for i in range(20)]
    y = [i % 3 == 0 for i in range(20)]
    a = assign_folds(ids, y, n_splits=4, random_state=3)
    b = assign_folds(ids[::-1], y[::-1], n_splits=4, random_state=3)
    assert a == b


def test_too_few_positives_is_a_clear_error():
    with pytest.raises(
        DataError, match="task 'event' has 3 positive patient\\(s\\), fewer than folds=4.*Lower --folds"
    ):
        assign_folds([f"P{i}" for i in range(20)], [1, 1, 1] + [0] * 17, n_splits=4, task="event")
    with pytest.raises(DataError, match="duplicate patient ids"):
        assign_folds(["A", "A", "B", "C"], [1, 0, 1, 0], n_splits=2)
