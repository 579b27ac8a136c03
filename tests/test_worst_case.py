"""The worst case never below the bill: the test server bills what the API bills for the parts
of a prompt that are not message text, checked against the API's figures the cookbook published."""

from __future__ import annotations

import json

import pytest

# The cookbook's tool example (How_to_count_tokens_with_tiktoken): the API billed 101 prompt tokens
# on gpt-4o and gpt-4o-mini, 105 on gpt-3.5-turbo and gpt-4.
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Get the current weather in a given location",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
                "unit": {
                    "type": "string",
                    "description": "The unit of temperature to return",
                    "enum": ["celsius", "fahrenheit"],
                },
            },
            "required": ["location"],
        },
    },
}
WEATHER_MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant that can answer to questions about the weather."},
    {"role": "user", "content": "What's the weather like in San Francisco?"},
]


@pytest.mark.parametrize("model,billed", [("gpt-4o-mini", 101), ("gpt-4", 105)])
def test_the_test_server_bills_function_definitions_as_the_api_did(server, model, billed):
    from test_mockserver import post

    body = {"model": model, "messages": WEATHER_MESSAGES, "tools": [WEATHER]}
    status, _, raw = post(server, "/chat/completions", body)
    assert status == 200 and json.loads(raw)["usage"]["prompt_tokens"] == billed
