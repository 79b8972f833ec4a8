"""The HTTP API's contract: its request/response models and the one client built on them.

Below the apps in the layering, so the API (which serves these models), the chat UI (which may not import
the API) and the tools (eval, bench) share one definition of every body, instead of copies that drift.
"""
