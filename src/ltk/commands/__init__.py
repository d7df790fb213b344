"""Click commands of the pipeline stages; each module stays thin and imports lazily."""
