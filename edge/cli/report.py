"""Write an inspection report of a recording: one self-contained HTML page and a GeoJSON of the detections.

The page shows the run (model, threshold, software versions, source, pose inputs), a map of the
crack detections (latitude/longitude from --mavlink, or chainage from --odometry; an inline SVG, no
map tiles), coverage, crack length and width over time, the worst frames with their masks drawn, and
a table of every frame (map marks and gallery images link to its rows). The GeoJSON holds one point
per frame with cracks, with its statistics, for GIS tools. A run recorded with a camera model also gets
its crack inventory: one entry per physical crack in metres, on the page and as GeoJSON, KML and CSV
(in a pipe, recorded with --pipe-diameter: by chainage and clock position).
With the mcap package installed, NAME.mcap holds the run for Foxglove (camera thumbnails, crack boxes,
location fixes, the inventory).

  crackseg run --source flight.mp4 --mavlink udpin:0.0.0.0:14550 --camera camera_info.yaml --record flight.db
  crackseg report flight.db       # flight.html, flight.geojson and flight.inventory.{geojson,kml,csv} beside it
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from crackseg.edge.artifact.errors import CracksegError
from crackseg.edge.report.geojson import detections_geojson
from crackseg.edge.report.inventory import build_inventory
from crackseg.edge.report.mcap_log import McapError, write_mcap
from crackseg.edge.report.page import render_report
from crackseg.edge.report.recording import Recording, read_recording
from crackseg.edge.runtime.inventory.formats import dumps_geojson, inventory_csv, inventory_kml, iso_time

__all__ = ["add_args", "run"]

log = logging.getLogger(__name__)


def add_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recording", type=Path, help="a database written by crackseg run --record")
    parser.add_argument("--out", type=Path, help="the HTML file (default: the recording's name with .html)")
    parser.add_argument("--geojson", type=Path, help="the GeoJSON file (default: the recording's name with .geojson)")
    parser.add_argument(
        "--inventory",
        type=Path,
        metavar="STEM",
        help="the crack inventory's files, STEM.inventory.geojson, .kml and .csv (default: the recording's name); "
        "written when the run recorded a camera (crackseg run --camera or --hfov)",
    )
    parser.add_argument(
        "--mcap",
        type=Path,
        metavar="FILE",
        help="the run as MCAP for Foxglove: camera thumbnails, crack boxes, location fixes and the inventory "
        "(default: the recording's name with .mcap, written when the mcap package is installed)",
    )
    parser.add_argument("--run", type=int, metavar="ID", help="which run of the recording (default: the last)")
    parser.add_argument("--worst", type=int, default=12, metavar="N", help="frames in the gallery (default: 12)")


def _write_mcap(recording: Recording, inventory_geojson: str | None, path: Path | None) -> None:
    """The MCAP file: always when ``--mcap`` names one, else when the ``mcap`` package is installed."""
    try:
        counts = write_mcap(recording, path or recording.path.with_suffix(".mcap"), inventory_geojson)
    except McapError as exc:
        if path is not None:
            raise
        log.info("no MCAP file: %s", exc)
        return
    log.info("MCAP: %s", ", ".join(f"{n} on {topic}" for topic, n in counts.items()))


def run(args: argparse.Namespace) -> int:
    if args.worst < 0:
        raise CracksegError(f"--worst must be at least 0, got {args.worst}")
    started = time.perf_counter()
    recording = read_recording(args.recording, args.run)
    if args.run is None and recording.runs > 1:
        log.warning(
            "%s holds %d runs (%s); reporting the last, run %d, started %s: choose another with --run ID",
            args.recording, recording.runs, ", ".join(map(str, recording.run_ids)), recording.run_id,
            iso_time(recording.started_ns),
        )  # fmt: skip
    html_path = args.out or args.recording.with_suffix(".html")
    geojson_path = args.geojson or args.recording.with_suffix(".geojson")
    inventory = build_inventory(recording)
    inventory_files = {} if inventory is None else {
        "geojson": dumps_geojson(inventory), "kml": inventory_kml(inventory), "csv": inventory_csv(inventory),
    }  # fmt: skip
    stem = args.inventory or args.recording.with_suffix("")
    try:
        with ThreadPoolExecutor(1) as pool:  # the MCAP file's compression and image reads overlap the page's work
            mcap = pool.submit(_write_mcap, recording, inventory_files.get("geojson"), args.mcap)
            html_path.write_text(render_report(recording, args.worst, inventory), encoding="utf-8")
            geojson_path.write_text(json.dumps(detections_geojson(recording)), encoding="utf-8")
            for suffix, text in inventory_files.items():
                Path(f"{stem}.inventory.{suffix}").write_text(text, encoding="utf-8")
            mcap.result()
    except OSError as exc:
        raise CracksegError(f"cannot write the report: {exc}") from None
    if not recording.frames:
        raise CracksegError(
            f"{args.recording} run {recording.run_id} holds no frames (the source delivered none): nothing was "
            f"inspected; {html_path} says so"
        )
    log.info(
        "report of %d frames in %.1f s: %s, %s", len(recording.frames), time.perf_counter() - started, html_path,
        geojson_path,
    )  # fmt: skip
    return 0
