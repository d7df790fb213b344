"""``ltk build-langpack`` stages: corpus (sources -> normalise -> language ID -> filters -> dedup -> token
budget -> English mix -> shards), parallel sets, instructions. One small module per step."""
