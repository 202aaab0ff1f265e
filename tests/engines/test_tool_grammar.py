"""The JSON schema a llama.cpp tool call is written under (no model needed)."""

from __future__ import annotations

import json

from voxline.engines.base import ToolSpec
from voxline.engines.llm_llamacpp import tool_call_schema

END = ToolSpec("end_call", "End the call.")
TRANSFER = ToolSpec(
    "transfer_call",
    "Transfer.",
    {
        "type": "object",
        "properties": {"department": {"enum": ["cards", "loans"]}},
        "required": ["department"],
    },
)


def test_one_tool_is_its_own_schema_with_a_fixed_name_and_an_object_for_arguments() -> None:
    schema = tool_call_schema([END])
    assert schema["properties"]["name"] == {"const": "end_call"}
    assert schema["properties"]["arguments"] == {"type": "object", "properties": {}}
    assert schema["required"] == ["name", "arguments"]


def test_several_tools_are_one_of_them_each_with_its_parameters() -> None:
    schema = tool_call_schema([END, TRANSFER])
    names = [option["properties"]["name"]["const"] for option in schema["oneOf"]]
    assert names == ["end_call", "transfer_call"]
    arguments = schema["oneOf"][1]["properties"]["arguments"]
    assert arguments["properties"]["department"]["enum"] == ["cards", "loans"]
    assert arguments["type"] == "object"


def test_the_schema_compiles_to_a_llama_cpp_grammar() -> None:
    from llama_cpp.llama_grammar import LlamaGrammar  # setup installs llama-cpp-python

    grammar = LlamaGrammar.from_json_schema(json.dumps(tool_call_schema([END, TRANSFER])))
    assert "transfer_call" in grammar._grammar  # the rule set names the tool
