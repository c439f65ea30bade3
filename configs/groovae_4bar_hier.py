"""groovae_4bar with a hierarchical decoder (MusicVAE's conductor idea).

Same encoder, hparams and data; a conductor LSTM emits one embedding per bar
(4 x 16 steps) and the flat GrooveLstmDecoder decodes each bar from it, without
autoregression across bars.
"""
from magenta.models.music_vae import MusicVAE, lstm_models

from groovae.configs import load_config

config = load_config("groovae_4bar")._replace(
    model=MusicVAE(
        lstm_models.BidirectionalLstmEncoder(),
        lstm_models.HierarchicalLstmDecoder(
            lstm_models.GrooveLstmDecoder(), level_lengths=[4, 16],
            disable_autoregression=True)))
