"""How a (history, prompt, response) triple becomes the exact input an RM sees.

Three styles, matching how reward models are trained in practice:

* ``"chat_template"``: the tokenizer's own chat template (Llama, Qwen, ... RMs).
* ``"template"``: a plain-text template for tokenizers without one (default
  ``"User: {content}\\n\\nAssistant: {content}"`` turns).
* ``"pair"``: a sentence pair ``tokenizer(prompt, response)`` as used by
  cross-encoder RMs such as OpenAssistant's DeBERTa reward models.

The formatted input is also the score-cache key, so two notebooks that format a
text the same way share cached scores.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["FORMAT_STYLES", "Message", "TextTemplate", "Formatter", "conversation", "cache_text"]

Message = dict  # {"role": "user"|"assistant"|"system", "content": str}
FORMAT_STYLES = ("auto", "chat_template", "template", "pair")


@dataclass(frozen=True)
class TextTemplate:
    """Plain-text rendering of a conversation, one format string per role."""

    system: str = "{content}\n\n"
    user: str = "User: {content}\n\n"
    assistant: str = "Assistant: {content}\n\n"

    def render(self, messages: Sequence[Message]) -> str:
        out = []
        for i, msg in enumerate(messages):
            role = msg["role"]
            if role not in ("system", "user", "assistant"):
                raise ValueError(f"message {i}: unknown role {role!r} (expected system, user or assistant)")
            out.append(getattr(self, role).format(content=msg["content"]))
        return "".join(out).rstrip()

    def to_dict(self) -> dict:
        return asdict(self)


def conversation(prompt: str, response: str, history: Sequence[Message] | None = None) -> list[Message]:
    """The message list: earlier turns, the final user prompt, the scored response."""
    messages = [dict(m) for m in (history or [])]
    messages.append({"role": "user", "content": prompt})
    messages.append({"role": "assistant", "content": response})
    return messages


@dataclass(frozen=True)
class Formatter:
    """Turns conversations into model inputs in one of the styles above."""

    style: str
    template: TextTemplate = TextTemplate()
    tokenizer: Any = None

    def __post_init__(self):
        if self.style not in FORMAT_STYLES[1:]:
            raise ValueError(f"format style must be one of {FORMAT_STYLES[1:]}, got {self.style!r}")
        if self.style == "chat_template" and getattr(self.tokenizer, "chat_template", None) is None:
            raise ValueError("format style 'chat_template' needs a tokenizer that has a chat template")

    @classmethod
    def for_tokenizer(cls, tokenizer, style: str = "auto", template: TextTemplate | None = None) -> Formatter:
        if style == "auto":
            style = "chat_template" if getattr(tokenizer, "chat_template", None) else "template"
        return cls(style=style, template=template or TextTemplate(), tokenizer=tokenizer)

    def format(self, prompt: str, response: str, history: Sequence[Message] | None = None) -> str | tuple[str, str]:
        if self.style == "pair":
            context = (
                TextTemplate().render([*(history or []), {"role": "user", "content": prompt}]) if history else prompt
            )
            return (context, response)
        messages = conversation(prompt, response, history)
        if self.style == "chat_template":
            return self.tokenizer.apply_chat_template(messages, tokenize=False)
        return self.template.render(messages)

    def describe(self) -> dict:
        """What identifies this formatting in a fingerprint."""
        info: dict = {"style": self.style}
        if self.style == "template":
            info["template"] = self.template.to_dict()
        if self.style == "chat_template":
            info["chat_template"] = self.tokenizer.chat_template
        return info


def cache_text(formatted: str | tuple[str, str]) -> str:
    """A canonical string for a formatted input (pairs are JSON-encoded)."""
    return formatted if isinstance(formatted, str) else json.dumps(list(formatted), ensure_ascii=False)
