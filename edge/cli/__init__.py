"""The ``crackseg`` command line."""
