"""The official GrooVAE 4-bar model: equal to magenta's CONFIG_MAP['groovae_4bar'].

Flat LSTM decoder; the public checkpoint groovae_4bar.tar was trained with it,
so the variable names (and these sizes) must not change.
"""
from magenta.common import merge_hparams
from magenta.contrib.training import HParams
from magenta.models.music_vae import Config, MusicVAE, data, lstm_models

config = Config(
    model=MusicVAE(lstm_models.BidirectionalLstmEncoder(),
                   lstm_models.GrooveLstmDecoder()),
    hparams=merge_hparams(
        lstm_models.get_default_hparams(),
        HParams(batch_size=512, max_seq_len=64, z_size=256, enc_rnn_size=[512],
                dec_rnn_size=[256, 256], max_beta=0.2, free_bits=48,
                dropout_keep_prob=0.3)),
    note_sequence_augmenter=None,
    data_converter=data.GrooveConverter(  # 4 bars x 16 steps x (9 hits, 9 velocities, 9 offsets)
        split_bars=4, steps_per_quarter=4, quarters_per_bar=4,
        max_tensors_per_notesequence=20,
        pitch_classes=data.ROLAND_DRUM_PITCH_CLASSES,
        inference_pitch_classes=data.REDUCED_DRUM_PITCH_CLASSES),
    tfds_name="groove/4bar-midionly",
)
