"""Tap2Drum / Drumify: a rhythm tapped on one key in, a full 4-bar drum performance out.

The 4-bar twin of magenta's ``groovae_2bar_tap_fixed_velocity``: groovae_4bar's
model and hparams; the converter squashes the encoder's input onto one
instrument (every onset on the open hi-hat) at one velocity, keeping its
micro-timing, while the decoder learns the whole kit.
"""
from groovae.configs import groove_converter, load_config

config = load_config("groovae_4bar")._replace(
    data_converter=groove_converter(tapify=True, fixed_velocities=True), tfds_name=None)
