"""A visual population: natural-like images and Poisson responses of planted Gabor cells."""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from ..errors import ParameterError
from ._common import check_random_state, check_scalar

__all__ = ["make_visual_population", "VisualPopulation", "GREY_LEVEL", "CONTRAST"]

_OWNER = "make_visual_population"

#: Mean grey level of the images.
GREY_LEVEL = 128.0
#: Standard deviation of the grey levels (over all images) around ``GREY_LEVEL``.
CONTRAST = 40.0


@dataclass(frozen=True)
class VisualPopulation:
    """Images, responses and the planted truth returned by :func:`make_visual_population`.

    Attributes
    ----------
    images : DataArray of shape (image, y, x)
        Training images (grey levels, float32), each shown once.
    responses : DataArray of shape (image, neuron)
        Spike counts (float32) to ``images``; the ``neuron`` dimension carries a
        ``cell_type`` coordinate (``"simple"`` or ``"complex"``).
    test_images : DataArray of shape (image, y, x)
        Held-out images, each shown ``n_repeats`` times.
    test_responses : DataArray of shape (repeat, image, neuron)
        Spike counts to every repeat of every test image (independent Poisson draws).
    test_rates : DataArray of shape (image, neuron)
        Expected counts (the noise-free rates) for the test images.
    filters : DataArray of shape (neuron, y, x)
        Each neuron's planted Gabor filter (for complex cells the first of the
        quadrature pair), in units of drive per unit of contrast.
    quadrature_filters : DataArray of shape (neuron, y, x)
        The Gabor 90 degrees out of phase with ``filters`` (used by complex cells only).
    cell_type : ndarray of str, shape (neuron,)
        ``"simple"`` or ``"complex"``.
    ground_truth : dict
        JSON-serialisable: per-neuron Gabor parameters (``x0``, ``y0`` in pixels,
        ``orientation`` in radians, ``frequency`` in cycles per pixel, ``envelope``
        (s.d. in pixels), ``phase``, ``filter_scale``, ``quadrature_scale``), ``cell_type``,
        ``baseline``, ``gain``, the ``rate_model`` and the generating ``parameters``.
    """

    images: xr.DataArray
    responses: xr.DataArray
    test_images: xr.DataArray
    test_responses: xr.DataArray
    test_rates: xr.DataArray
    filters: xr.DataArray
    quadrature_filters: xr.DataArray
    cell_type: np.ndarray
    ground_truth: dict = field(repr=False)

    def __repr__(self) -> str:
        n_images, height, width = self.images.shape
        n_repeats, n_test, _ = self.test_responses.shape
        n_complex = int((self.cell_type == "complex").sum())
        return (f"VisualPopulation({len(self.cell_type)} neurons ({len(self.cell_type) - n_complex} "
                f"simple, {n_complex} complex), {n_images} images of {height} x {width} pixels, "
                f"{n_test} test images x {n_repeats} repeats)")


def make_visual_population(n_neurons: int = 16, n_images: int = 2000, *,
                           image_size: int = 20, fraction_complex: float = 0.5,
                           n_test_images: int = 100, n_repeats: int = 10,
                           spectral_exponent: float = 1.0, baseline: float = 0.5,
                           gain: float = 2.0, random_state=None) -> VisualPopulation:
    """Simulate a population of V1-like simple and complex cells viewing natural-like images.

    **Images.** Square ``image_size`` x ``image_size`` noise images whose amplitude
    spectrum falls as ``1 / f**spectral_exponent`` (``1.0``: the ``1/f`` spectrum of
    natural images; ``0``: white noise); their mean luminance varies from image to image
    like the lowest spatial frequency. The pixels of all images together are scaled to
    zero mean and unit standard deviation (the *contrast* ``c``) and stored as grey
    levels ``GREY_LEVEL + CONTRAST * c`` (128 +- 40 over the set).

    **Filters.** Neuron ``i`` has a zero-mean Gabor filter ``g_i`` (an isotropic
    Gaussian envelope of s.d. ``envelope`` times a cosine grating of ``frequency``
    cycles per pixel, ``orientation`` and ``phase``, minus its envelope-weighted mean so
    that it ignores uniform luminance), centred at least two envelope s.d. from the
    border, and the quadrature partner ``h_i`` (phase + 90 degrees). Each is scaled so
    that its drive ``d = <g, c>`` has unit s.d. over the training images.

    **Rates.** A simple cell (linear filter, rectification) fires
    ``baseline + gain * max(d_g, 0)``; a complex cell (energy model: squared outputs of
    the quadrature pair, summed) fires ``baseline + gain * (d_g**2 + d_h**2) / 2``. Both
    have mean drive term of order ``gain``; the complex cell's rate is even in the
    image (``c`` and ``-c`` give the same rate), so no linear function of the pixels
    predicts it. **Responses** are Poisson counts of these rates: one draw per
    training image and ``n_repeats`` independent draws per test image (the repeats
    give the noise ceiling, e.g. the fraction of explainable variance).

    Parameters
    ----------
    n_neurons : int, default=16
        Number of neurons (>= 1).
    n_images : int, default=2000
        Training images (>= 1), each shown once.
    image_size : int, default=20
        Height and width in pixels (>= 8).
    fraction_complex : float in [0, 1], default=0.5
        Share of complex cells (rounded); the first neurons are simple cells.
    n_test_images : int, default=100
        Held-out images (>= 1).
    n_repeats : int, default=10
        Presentations of each test image (>= 2).
    spectral_exponent : float, default=1.0
        Exponent of the amplitude spectrum ``1 / f**spectral_exponent`` (>= 0).
    baseline : float, default=0.5
        Spontaneous count per presentation (>= 0).
    gain : float, default=2.0
        Count per unit of rectified (simple) or squared (complex) drive (> 0).
    random_state : int, numpy.random.Generator or None, default=None
        Seed; the same int gives identical data.

    Returns
    -------
    VisualPopulation
        Images, responses, test repeats, noise-free test rates, the planted filters,
        cell types and ``ground_truth`` (see :class:`VisualPopulation`).

    Raises
    ------
    ParameterError
        When a parameter is out of range; the message names it.

    Examples
    --------
    >>> pop = make_visual_population(n_neurons=4, n_images=50, random_state=0)
    >>> pop.images.dims, pop.responses.shape
    (('image', 'y', 'x'), (50, 4))
    >>> pop.test_responses.dims
    ('repeat', 'image', 'neuron')
    >>> pop.cell_type.tolist()
    ['simple', 'simple', 'complex', 'complex']
    """
    check_scalar("n_neurons", n_neurons, numbers.Integral, _OWNER, 1, None)
    check_scalar("n_images", n_images, numbers.Integral, _OWNER, 1, None)
    check_scalar("image_size", image_size, numbers.Integral, _OWNER, 8, None)
    check_scalar("fraction_complex", fraction_complex, numbers.Real, _OWNER, 0, 1)
    check_scalar("n_test_images", n_test_images, numbers.Integral, _OWNER, 1, None)
    check_scalar("n_repeats", n_repeats, numbers.Integral, _OWNER, 2, None)
    check_scalar("spectral_exponent", spectral_exponent, numbers.Real, _OWNER, 0, None)
    check_scalar("baseline", baseline, numbers.Real, _OWNER, 0, None)
    check_scalar("gain", gain, numbers.Real, _OWNER, 0, None, "neither")
    for name, value in (("spectral_exponent", spectral_exponent), ("baseline", baseline),
                        ("gain", gain)):
        if not np.isfinite(value):
            raise ParameterError(
                f"The '{name}' parameter of {_OWNER} must be finite. Got {value!r} instead.")
    rng = check_random_state(random_state, _OWNER)
    size = int(image_size)

    contrast = natural_noise_images(n_images + n_test_images, size, spectral_exponent, rng)
    n_complex = int(round(fraction_complex * n_neurons))
    cell_type = np.array(["simple"] * (n_neurons - n_complex) + ["complex"] * n_complex)
    params = _draw_gabor_parameters(n_neurons, size, rng)
    g = gabor(size, **params)
    h = gabor(size, **{**params, "phase": params["phase"] + np.pi / 2})
    train = contrast[:n_images].reshape(n_images, -1)
    scale_g = _drive_sd(train, g)
    scale_h = _drive_sd(train, h)
    g /= scale_g[:, None, None]
    h /= scale_h[:, None, None]

    rates = _rates(contrast.reshape(len(contrast), -1), g, h, cell_type == "complex",
                   baseline, gain)
    train_rates, test_rates = rates[:n_images], rates[n_images:]
    responses = rng.poisson(train_rates).astype(np.float32)
    test_responses = rng.poisson(np.broadcast_to(test_rates, (n_repeats, *test_rates.shape)))

    grey = (GREY_LEVEL + CONTRAST * contrast).astype(np.float32)
    pix = {"y": np.arange(size), "x": np.arange(size)}
    neuron = {"neuron": np.arange(n_neurons), "cell_type": ("neuron", cell_type)}

    def images(values, first):
        return xr.DataArray(values, dims=("image", "y", "x"), name="images",
                            coords={"image": np.arange(first, first + len(values)), **pix})

    test_index = np.arange(n_images, n_images + n_test_images)
    ground_truth = {
        "cell_type": cell_type.tolist(),
        "gabor": {k: v.tolist() for k, v in params.items()},
        "filter_scale": (1 / scale_g).tolist(),
        "quadrature_scale": (1 / scale_h).tolist(),
        "baseline": float(baseline),
        "gain": float(gain),
        "grey_level": GREY_LEVEL,
        "contrast": CONTRAST,
        "rate_model": {
            "simple": "baseline + gain * max(<g, c>, 0)",
            "complex": "baseline + gain * (<g, c>**2 + <h, c>**2) / 2",
            "contrast": "c = (image - grey_level) / contrast",
        },
        "parameters": {
            "n_neurons": int(n_neurons), "n_images": int(n_images), "image_size": size,
            "fraction_complex": float(fraction_complex), "n_test_images": int(n_test_images),
            "n_repeats": int(n_repeats), "spectral_exponent": float(spectral_exponent),
            "baseline": float(baseline), "gain": float(gain),
            "random_state": random_state if isinstance(random_state, numbers.Integral) else None,
        },
    }
    filt = {"neuron": neuron["neuron"], "cell_type": neuron["cell_type"], **pix}
    return VisualPopulation(
        images=images(grey[:n_images], 0),
        responses=xr.DataArray(responses, dims=("image", "neuron"), name="responses",
                               coords={"image": np.arange(n_images), **neuron}),
        test_images=images(grey[n_images:], n_images),
        test_responses=xr.DataArray(
            test_responses.astype(np.float32), dims=("repeat", "image", "neuron"),
            name="test_responses",
            coords={"repeat": np.arange(n_repeats), "image": test_index, **neuron}),
        test_rates=xr.DataArray(test_rates.astype(np.float32), dims=("image", "neuron"),
                                name="test_rates", coords={"image": test_index, **neuron}),
        filters=xr.DataArray(g, dims=("neuron", "y", "x"), coords=filt, name="filters"),
        quadrature_filters=xr.DataArray(h, dims=("neuron", "y", "x"), coords=filt,
                                        name="quadrature_filters"),
        cell_type=cell_type,
        ground_truth=ground_truth,
    )


def natural_noise_images(n: int, size: int, spectral_exponent: float,
                         rng: np.random.Generator) -> np.ndarray:
    """``n`` square images with a ``1 / f**spectral_exponent`` amplitude spectrum.

    White Gaussian noise is filtered in the Fourier domain; the DC component (each
    image's mean luminance) gets the amplitude of the lowest non-zero frequency
    ``1 / size``, so images differ in mean luminance as natural images do. The set is
    scaled to zero mean and unit standard deviation over all its pixels (not image by
    image, which would leave the mean luminance and the contrast of every image fixed:
    directions no response could then be fitted along).

    Parameters
    ----------
    n, size : int
    spectral_exponent : float
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of shape (n, size, size), float64
    """
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    f = np.hypot(fy, fx)
    f[0, 0] = 1.0 / size
    amplitude = f ** -float(spectral_exponent)
    white = rng.standard_normal((n, size, size))
    img = np.fft.irfft2(np.fft.rfft2(white) * amplitude, s=(size, size))
    return (img - img.mean()) / img.std()


def gabor(size: int, *, x0, y0, orientation, frequency, envelope, phase) -> np.ndarray:
    """Zero-mean Gabor filters on a ``size`` x ``size`` pixel grid, one per parameter set.

    ``exp(-r**2 / (2 envelope**2)) * cos(2 pi frequency u + phase)`` with ``u`` the
    coordinate along ``orientation`` from the centre ``(x0, y0)``, minus the envelope
    times its envelope-weighted mean (so a uniform image gives zero drive).

    Parameters
    ----------
    size : int
    x0, y0, orientation, frequency, envelope, phase : array-like of shape (n,)

    Returns
    -------
    ndarray of shape (n, size, size)
    """
    x0, y0, th, fr, sd, ph = (np.asarray(v, dtype=np.float64)[:, None, None]
                              for v in (x0, y0, orientation, frequency, envelope, phase))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    dx, dy = xx[None] - x0, yy[None] - y0
    u = dx * np.cos(th) + dy * np.sin(th)
    env = np.exp(-(dx**2 + dy**2) / (2 * sd**2))
    g = env * np.cos(2 * np.pi * fr * u + ph)
    dc = g.sum(axis=(1, 2), keepdims=True) / env.sum(axis=(1, 2), keepdims=True)
    return g - dc * env


def _draw_gabor_parameters(n: int, size: int, rng: np.random.Generator) -> dict:
    """Random Gabor parameters scaled to the image size (envelope ~ size / 8)."""
    envelope = rng.uniform(0.12, 0.15, n) * size
    frequency = rng.uniform(1.0, 1.5, n) / (2.5 * envelope)  # ~0.4-0.6 cycles per envelope s.d.
    margin = 2 * envelope  # < size / 4, so there is room for the centre
    x0 = rng.uniform(margin, size - 1 - margin)
    y0 = rng.uniform(margin, size - 1 - margin)
    return {"x0": x0, "y0": y0, "orientation": rng.uniform(0, np.pi, n),
            "frequency": frequency, "envelope": envelope, "phase": rng.uniform(0, 2 * np.pi, n)}


def _drive_sd(flat_images: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """Standard deviation of each filter's drive over the images."""
    drive = flat_images @ filters.reshape(len(filters), -1).T
    sd = drive.std(axis=0)
    return np.where(sd > 0, sd, 1.0)


def _rates(flat: np.ndarray, g: np.ndarray, h: np.ndarray, complex_cell: np.ndarray,
           baseline: float, gain: float) -> np.ndarray:
    """Expected counts ``(image, neuron)`` of the simple and complex cells."""
    dg = flat @ g.reshape(len(g), -1).T
    dh = flat @ h.reshape(len(h), -1).T
    simple = np.maximum(dg, 0.0)
    energy = 0.5 * (dg**2 + dh**2)
    return baseline + gain * np.where(complex_cell[None, :], energy, simple)
