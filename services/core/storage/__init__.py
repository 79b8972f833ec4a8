"""The vector store: the VectorStore protocol and the Qdrant server store, and the embedded Qdrant Edge store."""
