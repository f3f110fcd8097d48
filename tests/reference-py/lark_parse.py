#!/usr/bin/env python3
"""Parses texts with the real Lark (Debian's python3-lark), the reference for the appliance's Lark grammars.

Reads {"grammar": "...", "texts": ["...", ...]} on stdin and writes one JSON list: for each text, whether the grammar's
'start' rule parses it (Earley, Lark's default parser and lexer).
"""
import json
import sys

from lark import Lark
from lark.exceptions import LarkError

request = json.load(sys.stdin)
parser = Lark(request["grammar"], start="start")
verdicts = []
for text in request["texts"]:
    try:
        parser.parse(text)
        verdicts.append(True)
    except LarkError:
        verdicts.append(False)
json.dump(verdicts, sys.stdout)
