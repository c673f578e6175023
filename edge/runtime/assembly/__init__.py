"""One run of the runtime: its configuration (:mod:`.config`) and the builder that opens it (:mod:`.build`).

The command parses, this package assembles: ``with assemble(RunConfig(...)) as run: run.pipeline.run(stop)``.
"""

from __future__ import annotations

from crackseg.edge.runtime.assembly.build import Assembly, assemble, default_model, run_recorder
from crackseg.edge.runtime.assembly.config import (
    DEFAULT_SOURCE,
    MaskConfig,
    OverlayConfig,
    PoseConfig,
    PublishConfig,
    ReplayConfig,
    RunConfig,
    SerialConfig,
)

__all__ = [
    "DEFAULT_SOURCE",
    "Assembly",
    "MaskConfig",
    "OverlayConfig",
    "PoseConfig",
    "PublishConfig",
    "ReplayConfig",
    "RunConfig",
    "SerialConfig",
    "assemble",
    "default_model",
    "run_recorder",
]
