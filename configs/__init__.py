"""Named configs, one file each: ``config`` = magenta's ``music_vae.Config`` (model + hparams + data converter).

Loaded by name (``groovae train --config groovae_4bar``) or by path (``--config my_config.py``) through
``groovae.configs.load_config``; a new file here is a new named config.
"""
