"""Model runtime: the bi-encoder, the cross-encoder, the sparse encoder, their inference backends and
registry, the LLM client, and the build-time prefetch of weights."""
