"""The corpus stage of ``ltk build-langpack``, one module per step:

sources (read) -> normalize -> langid -> filters -> dedup (exact key, MinHash) -> token_count
[the per-document steps: ``steps``, run by datatrove through ``executor``]
-> selection (held-out split, dedup, token budget) -> mix (English by tokens) -> ``stage`` (shards,
manifest); ``parallel`` aligns target/English pairs for evaluation and translation instructions.
"""
