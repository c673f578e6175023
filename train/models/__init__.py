"""The crackseg model zoo. Importing this package registers every variant."""

from crackseg.train.models import (  # noqa: F401  (importing a model module registers its variants)
    cgnet,
    deepcrack_liu,
    deepcrack_zou,
    hcnn,
    pspnet,
    scnet,
    scnet_e0,
)
from crackseg.train.models._registry import (
    create_model,
    create_spec,
    describe_model,
    is_model,
    list_models,
    register_model,
)
from crackseg.train.models.base import CrackModel
from crackseg.train.models.scnet import SCNet, SCNetConfig

__all__ = [
    "CrackModel",
    "SCNet",
    "SCNetConfig",
    "create_model",
    "create_spec",
    "describe_model",
    "is_model",
    "list_models",
    "register_model",
]
