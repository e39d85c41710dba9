"""Plain records of the inference chain: requests and answers (storable as JSON). Endpoints are
settings: see remote_exec.settings."""

from __future__ import annotations

from typing import Any, Literal

import attrs

from remote_exec.settings import str_tuple


@attrs.frozen
class InferenceRequest:
    """A Messages-API request without the model, which each endpoint supplies."""

    messages: list[dict[str, Any]]
    system: str | list[dict[str, Any]] | None = None
    tools: list[dict[str, Any]] = attrs.Factory(list)
    """Tool definitions: name, description, input_schema (JSON Schema)."""
    tool_choice: dict[str, Any] | None = None
    """{"type": "tool", "name": ...} forces that tool: the structured-output idiom."""
    max_tokens: int | None = None
    """None: the endpoint's max_tokens."""
    temperature: float | None = None
    metadata: dict[str, str] = attrs.Factory(dict)
    """Sent as the API's metadata (Anthropic accepts only user_id there)."""
    sources: tuple[str, ...] = attrs.field(default=(), converter=str_tuple)
    """The files (relative to the workspace root) whose content the request carries. Never sent:
    the client refuses a request with an excluded one (see exclusion.is_excluded)."""

    @classmethod
    def structured(
        cls, messages: list[dict[str, Any]], tool: dict[str, Any], **fields: Any
    ) -> InferenceRequest:
        """A request whose answer must be one call of ``tool`` (its input is the structured output)."""
        return cls(
            messages, tools=[tool], tool_choice={"type": "tool", "name": tool["name"]}, **fields
        )

    @property
    def forced_tool(self) -> str | None:
        """The tool the answer must call, if any ("" when any tool will do)."""
        choice = self.tool_choice or {}
        if choice.get("type") == "tool":
            return str(choice.get("name", ""))
        return "" if choice.get("type") == "any" else None

    def to_body(self) -> dict[str, Any]:
        """The payload of an inference job: the Messages body without model, and the sources."""
        body = self.api_body()
        if self.sources:
            body["sources"] = list(self.sources)
        return body

    def api_body(self) -> dict[str, Any]:
        """The Messages body without model, as sent (before redaction)."""
        body: dict[str, Any] = {"messages": self.messages}
        if self.system is not None:
            body["system"] = self.system
        if self.tools:
            body["tools"] = self.tools
        if self.tool_choice is not None:
            body["tool_choice"] = self.tool_choice
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if self.metadata:
            body["metadata"] = self.metadata
        return body

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> InferenceRequest:
        return cls(
            messages=body["messages"],
            system=body.get("system"),
            tools=body.get("tools", []),
            tool_choice=body.get("tool_choice"),
            max_tokens=body.get("max_tokens"),
            temperature=body.get("temperature"),
            metadata=body.get("metadata", {}),
            sources=body.get("sources", ()),
        )


@attrs.frozen
class TextBlock:
    text: str
    type: Literal["text"] = "text"


@attrs.frozen
class ToolUseBlock:
    id: str
    name: str
    input: dict[str, Any]
    type: Literal["tool_use"] = "tool_use"


ContentBlock = TextBlock | ToolUseBlock


@attrs.frozen
class Usage:
    input_tokens: int
    output_tokens: int


@attrs.frozen
class InferenceResult:
    """One answer and where it came from: the caller stores all of it (provenance, cost)."""

    endpoint: str
    model: str
    """The model the server says answered (may differ from the endpoint's alias)."""
    content: list[ContentBlock]
    stop_reason: str | None
    usage: Usage
    latency_s: float
    request_id: str | None
    answered_at: float | None = None
    """When the endpoint answered (epoch seconds); a replayed answer keeps its recording's."""

    @property
    def text(self) -> str:
        return "".join(b.text for b in self.content if isinstance(b, TextBlock))

    def tool_input(self, name: str | None = None) -> dict[str, Any] | None:
        """The input of the first tool_use block (named ``name`` if given)."""
        for block in self.content:
            if isinstance(block, ToolUseBlock) and name in (None, block.name):
                return block.input
        return None

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InferenceResult:
        blocks: list[ContentBlock] = [
            TextBlock(b["text"])
            if b["type"] == "text"
            else ToolUseBlock(b["id"], b["name"], b["input"])
            for b in data["content"]
        ]
        return cls(
            endpoint=data["endpoint"],
            model=data["model"],
            content=blocks,
            stop_reason=data["stop_reason"],
            usage=Usage(**data["usage"]),
            latency_s=data["latency_s"],
            request_id=data["request_id"],
            answered_at=data.get("answered_at"),
        )
