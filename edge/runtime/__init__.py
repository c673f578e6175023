"""The runtime branch: sources -> pipeline -> postprocess -> sinks, with pose and the wire contract.

``sources/`` (frames and URIs), ``pose/`` (where the vehicle was), the pipeline and its stages here, and
``sinks/`` (ZeroMQ, serial, recording, overlay); ``assembly/`` builds one run from its configuration
(what ``crackseg run`` parses). It imports the shared core (contract, runners,
evaluation) and never the build stages (train, export, calib).
"""
