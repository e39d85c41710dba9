"""AI review: units, context packs, the prompt, the answer schema, fix validation, noise
control, the cache key."""
