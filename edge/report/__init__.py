"""``crackseg report``: a recorded run as one self-contained HTML page and a GeoJSON of its detections."""
