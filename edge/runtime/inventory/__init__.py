"""The crack inventory: each crack measured in metres, placed on the ground, and counted once.

A frame's mask is split into cracks (8-connected components, :mod:`.measure`); each crack's skeleton
goes through the camera model (:mod:`.camera`), the gimbal or mount and the vehicle's attitude onto
the ground (:mod:`.ground`), where it is measured in SI units; the same physical crack seen in many
frames becomes one entry with its best view and the median of its measurements (:mod:`.associate`).
:mod:`.formats` writes the inventory as GeoJSON, KML and CSV, and :mod:`.flight` renders a synthetic
survey flight over cracks at known places, the truth the tests measure all of this against.

The ground is a plane at the take-off altitude (flat terrain); this is an assumption, stated wherever
a position leaves the inventory. A crawler's forward-looking camera in a pipe (``--pipe-diameter``)
places cracks on the pipe's wall instead, by chainage and clock position (:mod:`.pipe`: a cylinder,
the camera on its axis), checked against a synthetic crawl (:mod:`.crawl`).
"""
