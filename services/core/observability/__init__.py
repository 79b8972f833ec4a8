"""Observability: OpenTelemetry/OpenInference tracing, span attribute builders, Phoenix's REST API."""
