"""Kept dedup signatures (tamis.dedup.signatures): the same file whatever order the batches come in, and a file
that is not of its kind is refused."""

import numpy as np
import pytest

from tamis.dedup import signatures
from tamis.errors import IntegrityError


def _parts():
    units = [signatures.hashes(signatures.EXACT_UNITS, b, np.array([0, 0, 1]), np.array([7, 8, 7], np.uint64),
                               [f"d{b}-0", f"d{b}-0", f"d{b}-1"], np.array([1, 0, 0])) for b in range(3)]
    near = [signatures.near(b, np.array([0, 2]), [f"d{b}-0", f"d{b}-2"], [(-1.0, -5.0, "x"), (float("inf"), 0.0, "y")],
                            [b"\x01\x02", b""], np.arange(6, dtype=np.uint64).reshape(2, 3)) for b in range(3)]
    return units, near


def test_a_kind_is_written_in_batch_row_position_order_whatever_order_parts_arrive(tmp_path):
    units, near = _parts()
    for kind, parts in ((signatures.EXACT_UNITS, units), (signatures.NEAR, near)):
        a, b = tmp_path / f"a.{kind}", tmp_path / f"b.{kind}"
        signatures.write(str(a), signatures.table(kind, parts))
        signatures.write(str(b), signatures.table(kind, parts[::-1]))
        assert a.read_bytes() == b.read_bytes()
        back = signatures.read(str(a), kind)
        assert [bt for bt, _ in signatures.by_batch(back)] == [0, 1, 2]
    back = signatures.read(str(tmp_path / f"a.{signatures.EXACT_UNITS}"), signatures.EXACT_UNITS)
    assert back.column("position").to_pylist()[:3] == [0, 1, 0]  # (row 0, pos 0), (row 0, pos 1), (row 1, pos 0)
    near_back = signatures.read(str(tmp_path / f"a.{signatures.NEAR}"), signatures.NEAR)
    assert near_back.column("bands").to_pylist()[1] == [3, 4, 5] and near_back.column("rank_score")[1].as_py() == np.inf


def test_a_file_of_another_kind_or_not_arrow_is_refused(tmp_path):
    units, _ = _parts()
    path = tmp_path / "x.arrow"
    signatures.write(str(path), signatures.table(signatures.EXACT_UNITS, units))
    with pytest.raises(IntegrityError, match="not a signature file of kind 'exact_docs'"):
        signatures.read(str(path), signatures.EXACT_DOCS)
    path.write_bytes(b"not arrow")
    with pytest.raises(IntegrityError):
        signatures.read(str(path), signatures.EXACT_UNITS)
