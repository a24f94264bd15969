"""laat.hyperparams: one typed home for LAAT's knobs, strict for the estimator, named in every error."""

import numpy as np
import pytest

from laat.hyperparams import LAATParams, validate_params
from laat.trust import TrustSettings


def test_numpy_scalars_from_a_parameter_grid_count_as_python_values():
    p = validate_params({"epochs": np.int64(30), "gamma": np.float32(10.0), "scale": np.bool_(False)}, "X")
    assert (p.epochs, p.gamma, p.scale) == (30, 10.0, False)
    assert type(p.epochs) is int and type(p.scale) is bool


def test_every_wrong_knob_is_named_with_its_value_in_one_error():
    with pytest.raises(ValueError) as err:
        validate_params({"model": "tree", "epochs": 0, "hidden": 2.0}, "LAATClassifier")
    message = str(err.value)
    assert message.startswith("LAATClassifier: invalid hyper-parameter ")
    for part in (
        "model='tree' (Input should be 'lr' or 'mlp')",
        "epochs=0 (Input should be greater than or equal to 1)",
        "hidden=2.0 (Input should be a valid integer",
    ):
        assert part in message


def test_an_unknown_knob_is_refused_by_name():
    with pytest.raises(ValueError, match=r"gama=1.0 \(Extra inputs are not permitted\)"):
        validate_params({"gama": 1.0}, "LAATClassifier")


@pytest.mark.parametrize("value", ["100", True, float("inf")])
def test_gamma_must_be_a_real_finite_number(value):
    with pytest.raises(ValueError, match=r"gamma="):
        validate_params({"gamma": value}, "LAATClassifier")


def test_trust_settings_and_confidence_weights_pass_as_objects():
    settings = TrustSettings(alpha=0.3)
    p = validate_params({"trust": settings, "confidence": {"age": 1.0}}, "X")
    assert p.trust is settings and p.confidence == {"age": 1.0}


def test_yaml_style_values_are_coerced_but_still_range_checked():
    """The Kedro side validates in pydantic's lax mode (YAML types), with the same ranges."""
    assert LAATParams.model_validate({"batch_size": None, "lr": 1}).lr == 1.0
    with pytest.raises(ValueError, match="tau"):
        LAATParams.model_validate({"tau": -1})
