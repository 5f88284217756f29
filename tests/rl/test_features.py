"""Stimulus representations for TD: CSC, presence, microstimuli (Ludvig et al. 2008)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

from neuroml.errors import ParameterError
from neuroml.rl.features import (
    complete_serial_compound,
    microstimulus,
    presence,
    time_since_onset,
)


def _onsets(n_trials=3, n_time=10, at=(2,)):
    s = np.zeros((n_trials, n_time))
    s[:, list(at)] = 1
    return s


def test_csc_is_a_tapped_delay_line():
    x = complete_serial_compound(_onsets(at=(2,)))
    assert x.shape == (3, 10, 10) and x.dtype == torch.float64 and x.device.type == "cpu"
    expected = np.zeros((10, 10))
    for t in range(2, 10):
        expected[t, t - 2] = 1  # k bins after onset -> feature k
    np.testing.assert_array_equal(x[1].numpy(), expected)
    short = complete_serial_compound(_onsets(at=(2,)), duration=3)
    np.testing.assert_array_equal(short[0].numpy(), expected[:, :3])


def test_two_stimuli_are_stimulus_major_and_a_new_onset_restarts():
    s = np.zeros((1, 8, 2))
    s[0, 1, 0] = 1
    s[0, 5, 0] = 1  # stimulus 0 again
    s[0, 3, 1] = 1
    x = complete_serial_compound(s, duration=4)[0].numpy()
    assert x.shape == (8, 8)
    on0 = {1: 0, 2: 1, 3: 2, 4: 3, 5: 0, 6: 1, 7: 2}  # bin -> lag of stimulus 0
    on1 = {3: 0, 4: 1, 5: 2, 6: 3}  # stimulus 1 stops being represented after 4 bins
    expected = np.zeros((8, 8))
    for t, k in on0.items():
        expected[t, k] = 1
    for t, k in on1.items():
        expected[t, 4 + k] = 1
    np.testing.assert_array_equal(x, expected)
    np.testing.assert_array_equal(time_since_onset(s)[0, :, 1].numpy(),
                                  [-1, -1, -1, 0, 1, 2, 3, 4])


def test_presence():
    s = _onsets(at=(3,))
    np.testing.assert_array_equal(presence(s)[0, :, 0].numpy(), [0, 0, 0] + [1] * 7)
    np.testing.assert_array_equal(presence(s, duration=2)[0, :, 0].numpy(),
                                  [0, 0, 0, 1, 1, 0, 0, 0, 0, 0])


def test_microstimulus_matches_the_paper_formula_and_its_peaks():
    n_time, m, decay, width = 400, 6, 0.985, 0.08
    s = np.zeros((1, n_time))
    s[0, 0] = 1
    x = microstimulus(s, m, decay, width)[0].numpy()
    assert x.shape == (n_time, m)
    y = decay ** np.arange(n_time)
    for i in range(1, m + 1):
        # the paper's basis, a Gaussian density without the 1/width factor, times y
        np.testing.assert_allclose(x[:, i - 1], y * norm.pdf(y, i / m, width) * width,
                                   rtol=1e-12, atol=1e-300)
        # peak: d/dy [y exp(-(y - mu)^2 / 2 s^2)] = 0  ->  y^2 - mu y - s^2 = 0
        mu = i / m
        y_star = min(1.0, (mu + math.sqrt(mu**2 + 4 * width**2)) / 2)
        t_star = math.log(y_star) / math.log(decay)

        def level(t, mu=mu):  # the microstimulus in continuous time
            yt = min(1.0, decay ** t)
            return yt * math.exp(-((yt - mu) ** 2) / (2 * width**2)) / math.sqrt(2 * math.pi)

        assert abs(int(np.argmax(x[:, i - 1])) - t_star) <= 1.0
        # sampled at whole bins, the peak lies between the continuous peak height and the
        # height half a bin from the peak (the nearest bin is at most 0.5 away; unimodal)
        lower = min(level(max(t_star - 0.5, 0.0)), level(t_star + 0.5))
        assert lower - 1e-12 <= x[:, i - 1].max() <= level(t_star) + 1e-12
    # later microstimuli (smaller centres) peak later and lower
    peaks = np.argmax(x, axis=0)
    assert np.all(np.diff(peaks) < 0) and np.all(np.diff(x.max(axis=0)) > 0)
    assert peaks[-1] == 0  # centre 1: y* > 1, so the peak is at the onset
    assert np.all(x[:0] == 0)


def test_microstimulus_is_zero_before_onset_and_per_trial():
    s = np.zeros((2, 20))
    s[0, 5] = 1
    s[1, 10] = 1
    x = microstimulus(s).numpy()
    assert np.all(x[0, :5] == 0) and np.all(x[1, :10] == 0)
    np.testing.assert_allclose(x[0, 5:15], x[1, 10:20], rtol=1e-12)


def test_tensor_input_keeps_device_and_float32():
    s = torch.zeros(2, 6, dtype=torch.float32)
    s[:, 1] = 1
    for fn in (complete_serial_compound, presence, microstimulus):
        out = fn(s)
        assert out.dtype == torch.float32 and out.device == s.device
        np.testing.assert_allclose(out.numpy(), fn(s.numpy()).numpy(), rtol=1e-5, atol=1e-7)
    assert microstimulus(s, dtype=torch.float64).dtype == torch.float64


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu():
    s = _onsets(at=(2, 6))
    for fn in (complete_serial_compound, presence, microstimulus):
        gpu = fn(torch.as_tensor(s, device="cuda"))
        assert gpu.device.type == "cuda"
        np.testing.assert_allclose(gpu.cpu().numpy(), fn(s).numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("call, match", [
    (lambda: complete_serial_compound(np.zeros(5)), "got 1-D input"),
    (lambda: presence(np.zeros((2, 3, 4, 5))), "got 4-D input"),
    (lambda: microstimulus(np.array([[0.0, np.nan]])), "NaN or infinity"),
    (lambda: complete_serial_compound(np.zeros((2, 3)), duration=0), "'duration'"),
    (lambda: microstimulus(np.zeros((2, 3)), trace_decay=1.0), "'trace_decay'"),
    (lambda: microstimulus(np.zeros((2, 3)), width=0), "'width'"),
    (lambda: microstimulus(np.zeros((2, 3)), n_microstimuli=0), "'n_microstimuli'"),
])
def test_bad_input(call, match):
    with pytest.raises(ParameterError, match=match):
        call()
