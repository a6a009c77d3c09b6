import numpy as np
import pytest

from particleseg.spacing import check_spacing


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ((1, 2, 3), (1.0, 2.0, 3.0)),
        ([0.5, 0.5, 0.25], (0.5, 0.5, 0.25)),
        (np.array([1.0, 2.0, 3.0], np.float32), (1.0, 2.0, 3.0)),
        ((np.float64(2), np.int64(3), 4), (2.0, 3.0, 4.0)),
        (2, (2.0, 2.0, 2.0)),
        (np.float32(0.5), (0.5, 0.5, 0.5)),
        (np.array(1.5), (1.5, 1.5, 1.5)),
    ],
)
def test_valid_spacings_become_three_floats(given, expected) -> None:
    out = check_spacing(given)
    assert out == expected
    assert all(type(v) is float for v in out)


@pytest.mark.parametrize(
    "given",
    [
        None,
        "abc",
        b"123",
        True,
        (1, 2),
        (1, 2, 3, 4),
        (1, -1, 1),
        (1, 0, 1),
        (1, float("nan"), 1),
        (1, float("inf"), 1),
        (1, "2", 3),
        (1, True, 1),
        [[1, 2, 3]],
        0,
        -1.0,
        object(),
    ],
)
def test_bad_spacings_are_refused_naming_the_value_and_source(given) -> None:
    with pytest.raises(ValueError, match=r"scan\.tif: spacing must be 3 positive numbers") as err:
        check_spacing(given, where="scan.tif")
    assert repr(given) in str(err.value)


def test_a_single_number_only_where_isotropic_is_allowed() -> None:
    assert check_spacing((2, 2, 2), isotropic_scalar=False) == (2.0, 2.0, 2.0)
    with pytest.raises(ValueError, match=r"\(Z, Y, X\), got 2$"):
        check_spacing(2, isotropic_scalar=False)


def test_none_gives_the_default_only_where_one_is_given() -> None:
    assert check_spacing(None, default=(1.0, 1.0, 1.0)) == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="got None"):
        check_spacing(None)
