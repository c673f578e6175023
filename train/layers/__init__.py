"""Small building blocks shared by every crackseg architecture."""

from crackseg.train.layers.attention import ScaleSpaceAttention
from crackseg.train.layers.conv import ConvLayer, ConvNormAct, SeparableConvNormAct, create_conv_layer
from crackseg.train.layers.edge_prior import HEDPrior, SobelPrior, create_prior
from crackseg.train.layers.side_output import SideOutputHead
from crackseg.train.layers.unpool import MaxUnpool, max_pool_with_selector

__all__ = [
    "ConvLayer",
    "ConvNormAct",
    "HEDPrior",
    "MaxUnpool",
    "ScaleSpaceAttention",
    "SeparableConvNormAct",
    "SideOutputHead",
    "SobelPrior",
    "create_conv_layer",
    "create_prior",
    "max_pool_with_selector",
]
