"""crackseg calibration stage: INT8 calibration data, Q/DQ quantization and the accuracy gate."""
