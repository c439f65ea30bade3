"""GrooVAE drum pipeline: GMD -> 4-bar windows -> MusicVAE training -> grooves.

Importing the package is cheap: the modules that use TensorFlow, magenta or
note_seq import ``groovae.compat`` first, which applies the shims before any
of them loads.
"""
__version__ = "0.1.0"
