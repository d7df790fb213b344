"""Training: continual pretraining (stage 1, packed text) then SFT (stage 2, messages) on TRL, with an
optional vocabulary extension and an Axolotl backend. Entry point: :func:`ltk.train.run.train_recipe`."""
