"""Humanize: a quantized, flat-velocity 4-bar beat in, the drummer's velocities and micro-timing out.

The 4-bar twin of magenta's ``groovae_2bar_humanize`` (Gillick et al. 2019):
groovae_4bar's model and hparams; the converter flattens the encoder's input
(every hit on the grid at one velocity) while the decoder learns the drummer's
performance of it.
"""
from groovae.configs import groove_converter, load_config

config = load_config("groovae_4bar")._replace(data_converter=groove_converter(humanize=True), tfds_name=None)
