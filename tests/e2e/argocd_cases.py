#!/usr/bin/python3
"""argocd_cases.py - Argo CD's health_test.yaml as a Lua chunk.

    argocd_cases.py DIR/health_test.yaml > cases.lua

Reads the tests (healthStatus {status, message}, inputPath) and the object
of each inputPath (relative to the file's folder), and prints a Lua chunk
returning { {input=..., status=..., message=..., obj={...}}, ... } for
tests/e2e/argocd_health.lua.

The object becomes a Lua table the way Argo CD makes one: sigs.k8s.io/yaml
turns the YAML into JSON (timestamps stay strings, keys become strings,
numbers float64) and decodeValue maps JSON null to nil, so null members are
left out. Uses Debian's python3-yaml. Exit 1 with a message on stderr when
a file is missing or not of that shape.
"""
import math
import os
import sys

import yaml


class JsonLikeLoader(yaml.SafeLoader):
    """SafeLoader without the timestamp type: YAML timestamps stay strings."""


JsonLikeLoader.add_constructor(
    "tag:yaml.org,2002:timestamp",
    lambda loader, node: loader.construct_scalar(node))


def lua_string(s):
    out = ['"']
    for b in s.encode("utf-8"):
        c = chr(b)
        if c == "\\":
            out.append("\\\\")
        elif c == '"':
            out.append('\\"')
        elif 32 <= b < 127:
            out.append(c)
        else:
            out.append("\\%d" % b)
    out.append('"')
    return "".join(out)


def lua_value(v):
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return repr(float(v)) if abs(v) >= 2 ** 53 else str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "(0/0)"
        if math.isinf(v):
            return "(1/0)" if v > 0 else "(-1/0)"
        return repr(v)
    if isinstance(v, str):
        return lua_string(v)
    if isinstance(v, list):
        return "{" + ", ".join(lua_value(x) for x in v) + "}"
    if isinstance(v, dict):
        parts = ["[%s] = %s" % (lua_string(str(k)), lua_value(x))
                 for k, x in v.items() if x is not None]
        return "{" + ", ".join(parts) + "}"
    raise ValueError("a value of type %s" % type(v).__name__)


def fail(msg):
    sys.stderr.write("argocd_cases: %s\n" % msg)
    sys.exit(1)


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.load(f, Loader=JsonLikeLoader)
    except (OSError, yaml.YAMLError) as e:
        fail("%s: %s" % (path, e))


def main():
    if len(sys.argv) != 2:
        fail("usage: argocd_cases.py DIR/health_test.yaml")
    test_file = sys.argv[1]
    base = os.path.dirname(test_file)
    doc = load(test_file)
    tests = doc.get("tests") if isinstance(doc, dict) else None
    if not isinstance(tests, list) or not tests:
        fail("%s: no list under tests:" % test_file)
    out = ["return {"]
    for i, t in enumerate(tests):
        hs = t.get("healthStatus") if isinstance(t, dict) else None
        inp = t.get("inputPath") if isinstance(t, dict) else None
        if not isinstance(hs, dict) or not isinstance(inp, str) or \
                not isinstance(hs.get("status"), str):
            fail("%s: test %d needs healthStatus.status and inputPath" % (test_file, i + 1))
        obj = load(os.path.join(base, inp))
        if not isinstance(obj, dict):
            fail("%s: not one YAML object" % inp)
        try:
            table = lua_value(obj)
        except ValueError as e:
            fail("%s: %s" % (inp, e))
        out.append("  {input = %s, status = %s, message = %s,\n   obj = %s}," % (
            lua_string(inp), lua_string(hs["status"]),
            lua_string(str(hs.get("message") or "")), table))
    out.append("}")
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
