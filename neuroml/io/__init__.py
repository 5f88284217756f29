"""Recordings in and out: spike trains, the Recording data model, NWB reading and writing."""

from .recording import LazyMapping, Recording, make_signal
from .spikes import SpikeTrains

__all__ = ["SpikeTrains", "Recording", "LazyMapping", "make_signal"]
