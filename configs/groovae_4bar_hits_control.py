"""Hits as controls: the hits are given, the model plays their velocities and micro-timing.

The 4-bar twin of magenta's ``groovae_2bar_hits_control_tfds``: groovae_4bar's
model and hparams; the converter passes each step's 9 hits to encoder and
decoder as controls, so the latent code carries only the feel (velocities,
offsets): encode one performance, decode with another beat's hits, and that
beat is played with the first one's feel (groove transfer).
"""
from groovae.configs import groove_converter, load_config

config = load_config("groovae_4bar")._replace(data_converter=groove_converter(hits_as_controls=True), tfds_name=None)
