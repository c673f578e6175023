"""The crackseg model zoo. Importing this package registers every variant."""

from crackseg.train.models import scnet  # noqa: F401  (registers the SCNet family)
from crackseg.train.models._registry import create_model, describe_model, is_model, list_models, register_model
from crackseg.train.models.base import CrackModel
from crackseg.train.models.scnet import SCNet, SCNetConfig

__all__ = [
    "CrackModel",
    "SCNet",
    "SCNetConfig",
    "create_model",
    "describe_model",
    "is_model",
    "list_models",
    "register_model",
]
