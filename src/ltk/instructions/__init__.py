"""The instruction stage of ``ltk build-langpack``: record ``formats`` (alpaca, sharegpt, messages),
translation requests ``from_parallel`` text, nested ``tiers``, and the ``stage`` that reads, translates
(:mod:`ltk.translation`), quality-checks and writes them. ``translate_file`` is ``ltk translate``."""
