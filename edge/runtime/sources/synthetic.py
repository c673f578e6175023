"""Procedural cracks on concrete and asphalt, with exact ground truth: demos, tests and benchmarks.

Frame ``k`` of seed ``s`` is a pure function of ``(s, k, width, height)``, so runs are reproducible and
frames can be rendered out of order. Backgrounds come from a small pool of textures built once per source
(multi-octave value noise, aggregate speckles, pores, stains); each frame takes a random flipped crop,
adds an illumination gradient and draws fresh cracks: random walks with angular momentum that branch,
with a width profile of 1-6 px that tapers at the tips. The mask is exactly the pixels drawn as crack;
a soft shadow just outside the mask mimics the optics of real photographs.

Query options: ``width``, ``height`` (default 512), ``fps`` (default 30, 0 = as fast as read),
``count`` (frames, default endless), ``seed`` (default 0), ``pace`` (``live``, the default, or ``file``).

Paced like the camera it stands in for (``pace=live``): frame ``k`` is captured ``k / fps`` after the first
read whether or not anyone reads it, a late reader gets the newest frame and the ones it missed count as
``dropped_stale``, so a demo shows the latency a camera would give. ``pace=file`` plays every frame in order,
waiting for the reader like a video file (nothing dropped; frames queue behind a slow model).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from crackseg.edge.runtime.sources.base import (
    FrameClock,
    PlaybackItem,
    PlaybackSource,
    QueryOptions,
    SourceError,
    import_cv2,
)
from crackseg.edge.runtime.sources.frame import Frame
from crackseg.edge.runtime.sources.uri import Uri

__all__ = ["PACES", "CrackSynth", "SyntheticSource"]

PACES = ("live", "file")
"""``live``: captured on a clock, newest frame wins; ``file``: every frame, when the reader asks."""

_POOL_SIZE = 6
_MARGIN = 0.25
"""Textures are this much larger than a frame, so random crops give distinct backgrounds."""
_STEP_PX = 2.0
_SHIFT = 4
_SUBPIXEL = 1 << _SHIFT
"""Fractional bits for cv2's sub-pixel drawing."""
_CHUNK = 24
_MAX_DEPTH = 2


class CrackSynth:
    """Renders synthetic crack images and their masks.

    Args:
        width: frame width in pixels.
        height: frame height in pixels.
        seed: selects the texture pool and every frame's cracks.
    """

    def __init__(self, width: int = 512, height: int = 512, seed: int = 0) -> None:
        if width < 16 or height < 16:
            raise SourceError(f"synthetic frames must be at least 16x16, got {width}x{height}")
        self.width, self.height, self.seed = width, height, seed
        self._cv2 = import_cv2()
        rng = np.random.default_rng([seed, 0])
        tex_h, tex_w = round(height * (1 + _MARGIN)), round(width * (1 + _MARGIN))
        self._textures = [self._texture(rng, tex_h, tex_w) for _ in range(_POOL_SIZE)]
        self._xs = np.linspace(-1.0, 1.0, width, dtype=np.float32)
        self._ys = np.linspace(-1.0, 1.0, height, dtype=np.float32)[:, None]

    def render(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame ``index``: ``uint8 (H, W, 3)`` RGB image and ``bool (H, W)`` crack mask."""
        rng = np.random.default_rng([self.seed, 1, index])
        background = self._background(rng)
        depth = np.zeros((self.height, self.width), np.uint8)
        diagonal = float(np.hypot(self.width, self.height))
        for _ in range(int(rng.integers(1, 4))):
            x, y = rng.uniform(0, self.width), rng.uniform(0, self.height)
            heading = rng.uniform(0, 2 * np.pi)
            width_px = rng.uniform(1.0, 5.5) if rng.random() < 0.7 else rng.uniform(1.0, 2.0)
            value = int(rng.integers(150, 215))  # how dark the crack floor is (255 = black)
            for direction in (0.0, np.pi):  # grow both ways from a seed point, as a crack does
                self._walk(
                    rng,
                    depth,
                    x=x,
                    y=y,
                    heading=heading + direction,
                    length=rng.uniform(0.25, 0.7) * diagonal,
                    width_px=width_px,
                    value=value,
                    level=0,
                )
        return self._shade(rng, background, depth), depth > 0

    def _background(self, rng: np.random.Generator) -> np.ndarray:
        texture = self._textures[int(rng.integers(len(self._textures)))]
        top = int(rng.integers(texture.shape[0] - self.height + 1))
        left = int(rng.integers(texture.shape[1] - self.width + 1))
        crop = texture[top : top + self.height, left : left + self.width]
        flip = int(rng.integers(-1, 3))  # cv2.flip codes -1 (both), 0 (vertical), 1 (horizontal); 2 = none
        return crop if flip == 2 else self._cv2.flip(crop, flip)

    def _shade(self, rng: np.random.Generator, background: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """Darken the crack floor (``depth``), a blurred shadow around it, and light the scene unevenly."""
        cv2 = self._cv2
        shadow = cv2.GaussianBlur(depth, (0, 0), float(rng.uniform(1.0, 2.0)))
        dark = cv2.max(depth, cv2.convertScaleAbs(shadow, alpha=float(rng.uniform(0.3, 0.6))))
        angle, slope = rng.uniform(0, 2 * np.pi), rng.uniform(0.05, 0.25) / 255
        light = np.float32(slope * np.cos(angle)) * self._xs + np.float32(slope * np.sin(angle)) * self._ys
        light += np.float32(rng.uniform(0.85, 1.1) / 255)
        factor = cv2.multiply(cv2.subtract(255, dark), light, dtype=cv2.CV_32F)
        return cv2.multiply(background, cv2.merge([factor] * 3), dtype=cv2.CV_8U)

    def _walk(
        self,
        rng: np.random.Generator,
        depth: np.ndarray,
        *,
        x: float,
        y: float,
        heading: float,
        length: float,
        width_px: float,
        value: int,
        level: int,
    ) -> None:
        """Draw one crack arm: a random walk with angular momentum, a width profile and branches."""
        steps = max(2, int(length / _STEP_PX))
        turn = np.convolve(rng.normal(0.0, 0.05, steps), np.full(8, 1 / 8))[:steps]  # smooth turning
        angles = heading + np.cumsum(turn) + rng.normal(0.0, 0.3, steps)  # plus jagged zig-zag
        xs = x + np.concatenate([[0.0], np.cumsum(_STEP_PX * np.cos(angles))])
        ys = y + np.concatenate([[0.0], np.cumsum(_STEP_PX * np.sin(angles))])
        s = np.linspace(0.0, 1.0, steps + 1)
        knots = rng.uniform(0.55, 1.25, 6)
        profile = np.interp(s, np.linspace(0, 1, 6), knots) * np.minimum(1.0, (1.0 - s) * 4.0) ** 0.7
        if level == 0:
            profile *= np.minimum(1.0, 0.5 + s * 4.0)  # the seed point sits inside a crack, not at a tip
        widths = np.clip(width_px * profile, 1.0, 6.0)
        self._draw(depth, np.stack([xs, ys], axis=1), widths, value)
        if level >= _MAX_DEPTH:
            return
        for _ in range(int(rng.poisson(1.2 if level == 0 else 0.5))):
            at = int(rng.integers(steps // 8, steps))
            side = 1.0 if rng.random() < 0.5 else -1.0
            self._walk(
                rng,
                depth,
                x=float(xs[at]),
                y=float(ys[at]),
                heading=float(angles[at - 1]) + side * rng.uniform(0.4, 1.2),
                length=length * rng.uniform(0.2, 0.6),
                width_px=max(1.0, float(widths[at]) * rng.uniform(0.4, 0.8)),
                value=value,
                level=level + 1,
            )

    def _draw(self, depth: np.ndarray, points: np.ndarray, widths: np.ndarray, value: int) -> None:
        """Fill the arm's outline (centre line offset by half the width on both sides).

        The outline is filled in chunks cut where an offset side folds back (a bend tighter than the
        half-width) and every ``_CHUNK`` steps, because ``fillPoly`` XORs where a polygon overlaps itself;
        separate fills add up. A 1-px centre line keeps hairline stretches 8-connected.
        """
        cv2 = self._cv2
        tangent = np.gradient(points, axis=0)
        tangent /= np.linalg.norm(tangent, axis=1, keepdims=True) + 1e-9
        normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
        half = ((widths - 1.0) / 2.0)[:, None]  # filled polygons include their boundary pixels: one extra
        left, right = points + normal * half, points - normal * half
        step = np.diff(points, axis=0)
        folds = np.flatnonzero(
            (np.sum(np.diff(left, axis=0) * step, axis=1) <= 0) | (np.sum(np.diff(right, axis=0) * step, axis=1) <= 0)
        )
        cuts = np.unique(np.concatenate([[0, len(points) - 1], folds, folds + 1, np.arange(0, len(points), _CHUNK)]))
        left = np.rint(left * _SUBPIXEL).astype(np.int32)
        right = np.rint(right * _SUBPIXEL).astype(np.int32)
        for start, stop in zip(cuts[:-1], cuts[1:] + 1, strict=True):
            cv2.fillPoly(
                depth, [np.concatenate([left[start:stop], right[start:stop][::-1]])], value, cv2.LINE_8, _SHIFT
            )
        cv2.polylines(depth, [np.rint(points * _SUBPIXEL).astype(np.int32)], False, value, 1, cv2.LINE_8, _SHIFT)

    def _texture(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        """A concrete or asphalt texture, ``uint8 (height, width, 3)`` RGB."""
        cv2 = self._cv2
        material = _ASPHALT if rng.random() < 0.3 else _CONCRETE
        lum = np.zeros((height, width), np.float32)
        amplitude, total = 1.0, 0.0
        for octave in range(6):  # value noise, persistence 0.55: broad blotches down to fine mottling
            cells = 2 * 2**octave
            grid = rng.random((cells, max(2, cells * width // height))).astype(np.float32)
            lum += amplitude * cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
            total += amplitude
            amplitude *= 0.55
        lum = (lum / total - 0.5) * material.blotch
        lum += rng.normal(0.0, material.grain, (height, width)).astype(np.float32)
        for radius in (1, 2, 3):  # aggregate: light and dark stones of a few sizes
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
            stones = ((material.light_stones, material.stone_tone), (material.dark_stones, -material.stone_tone))
            for density, tone in stones:
                n = int(density * height * width / radius**2)
                specks = np.zeros((height, width), np.float32)
                specks[rng.integers(0, height, n), rng.integers(0, width, n)] = rng.uniform(0.4, 1.0, n) * abs(tone)
                lum += np.sign(tone) * cv2.dilate(specks, kernel)
        if material.pores:  # air pores: small dark holes in cast concrete
            pores = np.zeros((height, width), np.float32)
            n = int(material.pores * height * width)
            pores[rng.integers(0, height, n), rng.integers(0, width, n)] = rng.uniform(0.15, 0.35, n)
            lum -= cv2.GaussianBlur(cv2.dilate(pores, np.ones((3, 3), np.uint8)), (3, 3), 0)
        lum = cv2.GaussianBlur(lum, (3, 3), 0.6)
        blobs = cv2.resize(rng.random((5, 5)).astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
        stain = np.clip((blobs - 0.55) * 3.0, 0.0, 1.0) * rng.uniform(0.1, 0.35)  # water and oil marks
        warmth = rng.uniform(-0.3, 1.0) * material.warmth
        tint = np.array([1.0 + 0.05 * warmth, 1.0 + 0.01 * warmth, 1.0 - 0.06 * warmth], np.float32)
        tone = (rng.uniform(*material.base) + lum) * (1.0 - stain)
        return np.clip(tone[:, :, None] * tint * 255.0, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class _Material:
    base: tuple[float, float]
    blotch: float
    grain: float
    light_stones: float
    dark_stones: float
    stone_tone: float
    pores: float
    warmth: float


_CONCRETE = _Material(
    base=(0.55, 0.72),
    blotch=0.35,
    grain=0.03,
    light_stones=0.004,
    dark_stones=0.004,
    stone_tone=0.1,
    pores=0.0006,
    warmth=1.0,
)
_ASPHALT = _Material(
    base=(0.28, 0.4),
    blotch=0.2,
    grain=0.04,
    light_stones=0.02,
    dark_stones=0.01,
    stone_tone=0.16,
    pores=0.0,
    warmth=0.2,
)


class SyntheticSource(PlaybackSource):
    """An endless (or ``count``-long) stream of synthetic crack frames with ``mask_gt`` attached.

    Args:
        width, height: frame size in pixels.
        fps: pace frames at this rate; 0 = as fast as the consumer reads (then always paced like a file).
        count: number of frames before end of stream; ``None`` = endless.
        seed: makes the stream reproducible.
        pace: ``live`` (a camera: newest frame wins, missed ones counted stale) or ``file`` (every frame).
        source_id: overrides the id stamped on frames (default: the URI).
    """

    QUERY_OPTIONS: ClassVar[QueryOptions] = {
        "width": int, "height": int, "fps": float, "count": int, "seed": int, "pace": str,
    }  # fmt: skip

    def __init__(
        self,
        uri: Uri,
        *,
        width: int = 512,
        height: int = 512,
        fps: float = 30.0,
        count: int | None = None,
        seed: int = 0,
        pace: str = "live",
        source_id: str | None = None,
    ) -> None:
        super().__init__(uri, fps=fps, source_id=source_id)
        if count is not None and count < 0:
            raise SourceError(f"count must be >= 0 (or absent for endless), got {count}")
        if pace not in PACES:
            raise SourceError(f"pace must be one of {', '.join(PACES)}, got {pace!r}")
        self.width, self.height, self.count, self.seed = width, height, count, seed
        self.pace = pace
        self.live = pace == "live" and fps > 0
        self._clock = FrameClock(fps) if self.live else None
        self._synth: CrackSynth | None = None
        self._index = 0

    def _open_impl(self) -> None:
        self._synth = CrackSynth(self.width, self.height, self.seed)
        self._index = 0
        if self._clock is not None:
            self._clock.reset()

    def _read_impl(self, timeout_s: float) -> Frame | None:
        if self._clock is None:
            return super()._read_impl(timeout_s)
        assert self._synth is not None
        if self.count is not None and self._index >= self.count:
            self._end_stream()
            return None
        last = None if self.count is None else self.count - 1
        captured = self._clock.next(timeout_s, last)
        if captured is None:
            return None
        index, capture_ns, stale = captured
        self._stats.dropped_stale += stale
        self._index = index + 1
        image, mask = self._synth.render(index)
        return self._make_frame(image, capture_ns, mask, f"synthetic-{self.seed}-{index:06d}")

    def _next_item(self) -> PlaybackItem | None:
        assert self._synth is not None
        if self.count is not None and self._index >= self.count:
            return None
        image, mask = self._synth.render(self._index)
        self._index += 1
        return PlaybackItem(image, mask, f"synthetic-{self.seed}-{self._index - 1:06d}")

    def _close_impl(self) -> None:
        self._synth = None
