"""groovae_4bar_hier shrunk for tests and smoke runs."""
from groovae.configs import load_config, with_hparams

config = with_hparams(
    load_config("groovae_4bar_hier"), batch_size=8, z_size=16, enc_rnn_size=[32],
    dec_rnn_size=[32, 32], free_bits=4)._replace(tfds_name=None)
