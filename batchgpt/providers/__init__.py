"""Providers: each API batchgpt can send requests to, described in one module (spec.py is the seam;
openai.py serves OpenAI, Azure OpenAI and every compatible server), and how a job's settings,
the command line and the environment resolve to one (resolve.py).
"""

from __future__ import annotations

from .openai import OPENAI, OpenAIApi
from .resolve import api_key, api_of, identity, key_said, merged, provider_from
from .spec import MalformedReply, ProviderApi

__all__ = [
    "OPENAI",
    "MalformedReply",
    "OpenAIApi",
    "ProviderApi",
    "api_key",
    "api_of",
    "identity",
    "key_said",
    "merged",
    "provider_from",
]
