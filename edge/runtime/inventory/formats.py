"""The inventory as files others open: GeoJSON (GIS), KML (Google Earth) and CSV (spreadsheets).

Every format holds the same rows (:func:`inventory_rows`): one per crack, its centre line from the best
view as WGS84 lon/lat, and SI measurements (metres, square metres) with the pixel measurements beside
them. Times are ISO 8601 in UTC. Positions lie on flat ground at the take-off altitude (the inventory's
assumption), which GeoJSON carries as each coordinate's altitude above mean sea level; KML clamps the
line to the ground.

* GeoJSON: RFC 7946, a ``FeatureCollection`` with one ``LineString`` ``Feature`` per crack.
* KML 2.2: one ``Placemark`` per crack with its measurements as ``ExtendedData``.
* CSV: one row per crack, the centre line as WKT (``LINESTRING (lon lat, ...)``).

In a pipe (:mod:`.pipe`) a crack has no lon/lat: it is placed by ``chainage_m`` .. ``chainage_end_m``
(metres along the pipe) and its clock position, ``clock`` at the middle of its centre line and
``clock_from`` .. ``clock_to`` clockwise across it (1-12, 12 the crown), as sewer-inspection codes report
it; GeoJSON gives it a ``null`` geometry (RFC 7946's unlocated feature), KML a ``Placemark`` without a
line, CSV an empty ``wkt``. On the ground those five fields are empty.
"""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crackseg.edge.runtime.inventory.associate import Inventory
from crackseg.edge.runtime.inventory.pipe import clock_hour

__all__ = [
    "CSV_COLUMNS",
    "CrackRow",
    "dumps_geojson",
    "inventory_csv",
    "inventory_geojson",
    "inventory_kml",
    "inventory_rows",
    "iso_time",
]

_KML = "http://www.opengis.net/kml/2.2"
_DIGITS = 7
"""Decimal places of a degree: about 1 cm, finer than any projection here."""


def iso_time(ns: int) -> str:
    """ISO 8601 UTC with milliseconds, e.g. ``2023-11-14T22:13:20.000Z``."""
    stamp = datetime.fromtimestamp(ns // 1_000_000 / 1e3, timezone.utc).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


@dataclass(frozen=True)
class CrackRow:
    """One inventory entry in SI units (medians over its measured views; see :mod:`.associate`)."""

    id: int
    length_m: float
    max_width_m: float
    area_m2: float
    length_px: float
    max_width_px: float
    pixels: float
    views: int
    complete: bool
    first_seen: str
    last_seen: str
    best_frame_id: int
    best_gsd_m: float
    ground_alt_m: float | None
    chainage_m: float | None
    chainage_end_m: float | None
    clock: int | None
    clock_from: int | None
    clock_to: int | None
    line_lonlat: tuple[tuple[float, float], ...]


CSV_COLUMNS = (*(name for name in CrackRow.__dataclass_fields__ if name != "line_lonlat"), "wkt")


def inventory_rows(inventory: Inventory) -> list[CrackRow]:
    """One row per inventory entry, in order of first sight."""
    rows = []
    for entry in inventory.entries:
        best = entry.best
        assert best is not None, "an entry has at least one view"
        in_pipe = inventory.pipe_diameter_m is not None
        line = () if in_pipe else inventory.lonlat(best.line_ne).round(_DIGITS)
        rows.append(
            CrackRow(
                id=entry.id,
                length_m=round(entry.median("length_m"), 3),
                max_width_m=round(entry.median("max_width_m"), 4),
                area_m2=round(entry.median("area_m2"), 4),
                length_px=round(entry.median("trace.length_px"), 1),
                max_width_px=round(entry.median("trace.max_width_px"), 1),
                pixels=entry.median("trace.pixels"),
                views=entry.frames,
                complete=entry.complete,
                first_seen=iso_time(entry.first_ns),
                last_seen=iso_time(entry.last_ns),
                best_frame_id=best.frame_id,
                best_gsd_m=round(best.gsd_m, 4),
                ground_alt_m=None if in_pipe else round(inventory.ground_alt_m or 0.0, 2),
                **_pipe_fields(best.line_ne, inventory.pipe_diameter_m),
                line_lonlat=tuple((float(lon), float(lat)) for lon, lat in line),
            )
        )
    return rows


def _pipe_fields(wall: NDArray[np.float64], diameter_m: float | None) -> dict[str, Any]:
    """Chainage and clock fields of a centre line on a pipe's unrolled wall (``None`` each on the ground)."""
    if diameter_m is None:
        return dict.fromkeys(("chainage_m", "chainage_end_m", "clock", "clock_from", "clock_to"))
    radius = diameter_m / 2
    steps = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(wall, axis=0), axis=1))])
    middle_arc = float(np.interp(steps[-1] / 2, steps, wall[:, 1]))
    return {
        "chainage_m": round(float(wall[:, 0].min()), 3),
        "chainage_end_m": round(float(wall[:, 0].max()), 3),
        "clock": clock_hour(middle_arc, radius),
        "clock_from": clock_hour(float(wall[:, 1].min()), radius),
        "clock_to": clock_hour(float(wall[:, 1].max()), radius),
    }


def _properties(row: CrackRow) -> dict[str, Any]:
    properties = asdict(row)
    del properties["line_lonlat"]
    return properties


def inventory_geojson(inventory: Inventory) -> dict[str, Any]:
    """An RFC 7946 ``FeatureCollection``: a ``LineString`` per crack, [lon, lat, altitude above MSL]."""
    features = [
        {
            "type": "Feature",
            "id": row.id,
            "geometry": {
                "type": "LineString",
                "coordinates": [[lon, lat, row.ground_alt_m] for lon, lat in row.line_lonlat],
            }
            if row.line_lonlat
            else None,  # in a pipe: chainage and clock position, no place on the Earth
            "properties": _properties(row),
        }
        for row in inventory_rows(inventory)
    ]
    return {"type": "FeatureCollection", "features": features}


def inventory_kml(inventory: Inventory, name: str = "crackseg crack inventory") -> str:
    """A KML 2.2 document: one ``Placemark`` ``LineString`` per crack, clamped to the ground."""
    ET.register_namespace("", _KML)

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        element = ET.SubElement(parent, f"{{{_KML}}}{tag}", attrs)
        element.text = text
        return element

    root = ET.Element(f"{{{_KML}}}kml")
    document = sub(root, "Document")
    sub(document, "name", name)
    style = sub(document, "Style", id="crack")
    line_style = sub(style, "LineStyle")
    sub(line_style, "color", "ff0000ff")  # aabbggrr: opaque red
    sub(line_style, "width", "3")
    for row in inventory_rows(inventory):
        placemark = sub(document, "Placemark", id=f"crack-{row.id}")
        sub(placemark, "name", f"crack {row.id}")
        sub(
            placemark,
            "description",
            f"{row.length_m:.2f} m long, {row.max_width_m * 1000:.0f} mm wide, {row.views} views",
        )
        timespan = sub(placemark, "TimeSpan")
        sub(timespan, "begin", row.first_seen)
        sub(timespan, "end", row.last_seen)
        sub(placemark, "styleUrl", "#crack")
        extended = sub(placemark, "ExtendedData")
        for key, value in _properties(row).items():
            sub(sub(extended, "Data", name=key), "value", str(value))
        if not row.line_lonlat:
            continue  # in a pipe: no line on the Earth
        line = sub(placemark, "LineString")
        sub(line, "altitudeMode", "clampToGround")
        sub(line, "coordinates", " ".join(f"{lon},{lat}" for lon, lat in row.line_lonlat))
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


def inventory_csv(inventory: Inventory) -> str:
    """One header line, then a row per crack (:data:`CSV_COLUMNS`; the centre line as WKT in lon lat)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in inventory_rows(inventory):
        points = ", ".join(f"{lon} {lat}" for lon, lat in row.line_lonlat)
        wkt = f"LINESTRING ({points})" if points else ""
        writer.writerow([*_properties(row).values(), wkt])
    return out.getvalue()


def dumps_geojson(inventory: Inventory) -> str:
    """:func:`inventory_geojson` as compact JSON text."""
    return json.dumps(inventory_geojson(inventory), separators=(",", ":"))
