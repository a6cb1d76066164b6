"""Resilience shared by coordinator and providers: retry policies, breakers, settings.

Neutral vocabulary, no I/O: may import `nons.core` only, never NATS, a provider
or the coordinator.
"""
