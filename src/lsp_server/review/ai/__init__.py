"""AI review: units, context packs, prompts, answers and their validation, the cache key."""
