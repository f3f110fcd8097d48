"""Renders a chat template the way Hugging Face transformers does, as the reference for the appliance's tests.

Reads {"template", "messages", "tools", "bos_token", "eos_token", "add_generation_prompt", "today", "variables"} as
JSON on stdin and writes the rendered prompt to stdout; "tools" reaches the template only when given, as the appliance
passes it; "variables" are extra keyword arguments, as apply_chat_template passes them (enable_thinking). Run with Debian's /usr/bin/python3 and python3-jinja2.
"""
import datetime
import json
import sys

from jinja2 import nodes
from jinja2.exceptions import TemplateError
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment


class GenerationBlocks(Extension):
    """{% generation %}...{% endgeneration %} as transformers accepts it: the body is rendered as written, in a scope
    of its own (transformers only records where it starts and ends, for training masks)."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.Scope(body, lineno=lineno)


def raise_exception(message):
    raise TemplateError(message)


def tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


request = json.load(sys.stdin)
today = datetime.datetime.strptime(request.get("today", "2026-11-28"), "%Y-%m-%d")
# As transformers builds it: loop controls (break, continue) and generation blocks switched on.
environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols", GenerationBlocks])
environment.filters["tojson"] = tojson
environment.globals["raise_exception"] = raise_exception
environment.globals["strftime_now"] = lambda format: today.strftime(format)
template = environment.from_string(request["template"])
context = {
    "messages": request["messages"],
    "bos_token": request.get("bos_token") or "",
    "eos_token": request.get("eos_token") or "",
    "add_generation_prompt": request.get("add_generation_prompt", True),
}
if request.get("tools"):
    context["tools"] = request["tools"]
context.update(request.get("variables") or {})
sys.stdout.write(template.render(**context))
