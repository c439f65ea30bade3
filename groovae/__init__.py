"""GrooVAE drum pipeline: GMD -> 4-bar windows -> MusicVAE training -> grooves.

Importing the package applies the compatibility shims (groovae.compat) before
anything touches tensorflow, magenta or note_seq.
"""
from groovae import compat  # noqa: F401  (must stay first)

__version__ = "0.1.0"
