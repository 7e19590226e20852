#!/usr/bin/python3
"""Checks the golden VmConfig files (ch_config_*.json) against cloud-hypervisor's OpenAPI spec.

Every key must be a property of its schema (no additionalProperties in the spec: an unknown key
is a typo cloud-hypervisor would reject or ignore), required members must be present, and
types, enums and minimums must hold. A deliberately small validator for the subset of OpenAPI
the spec uses ($ref, type, properties, required, items, enum, minimum, format int64/int16/uint8).

Usage: /usr/bin/python3 tests/unit/golden/check_schema.py [SPEC.yaml] [FILE.json...]
Needs python3-yaml. Not part of the test runner: run it after changing a golden file.
"""
import glob
import json
import os
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SPEC = "/work/shared/reference/cloud-hypervisor-openapi-v54.yaml"

INT_RANGES = {
    "int64": (-(2**63), 2**63 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "uint8": (0, 255),
}


def resolve(spec, schema):
    while "$ref" in schema:
        ref = schema["$ref"]
        assert ref.startswith("#/"), ref
        node = spec
        for part in ref[2:].split("/"):
            node = node[part]
        schema = node
    return schema


def check(spec, schema, value, where, errors):
    schema = resolve(spec, schema)
    typ = schema.get("type")
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} not in {schema['enum']}")
    if typ == "object" or "properties" in schema:
        if not isinstance(value, dict):
            errors.append(f"{where}: expected an object")
            return
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{where}: missing required {key!r}")
        for key, member in value.items():
            if key not in props:
                errors.append(f"{where}.{key}: not in the schema")
                continue
            check(spec, props[key], member, f"{where}.{key}", errors)
    elif typ == "array":
        if not isinstance(value, list):
            errors.append(f"{where}: expected an array")
            return
        for i, item in enumerate(value):
            check(spec, schema["items"], item, f"{where}[{i}]", errors)
    elif typ == "string":
        if not isinstance(value, str):
            errors.append(f"{where}: expected a string")
    elif typ == "boolean":
        if not isinstance(value, bool):
            errors.append(f"{where}: expected a boolean")
    elif typ == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(f"{where}: expected an integer")
            return
        lo, hi = INT_RANGES.get(schema.get("format"), (-(2**63), 2**63 - 1))
        if "minimum" in schema:
            lo = max(lo, schema["minimum"])
        if not lo <= value <= hi:
            errors.append(f"{where}: {value} out of range [{lo}, {hi}]")
    elif typ is not None:
        errors.append(f"{where}: unsupported schema type {typ!r}")


def main(argv):
    spec_path = argv[1] if len(argv) > 1 else DEFAULT_SPEC
    files = argv[2:] or sorted(glob.glob(os.path.join(HERE, "ch_config_*.json")))
    with open(spec_path, encoding="utf-8") as f:
        spec = yaml.safe_load(f)
    vmconfig = spec["components"]["schemas"]["VmConfig"]
    failed = 0
    for path in files:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        errors = []
        check(spec, vmconfig, doc, "VmConfig", errors)
        name = os.path.basename(path)
        if errors:
            failed += 1
            for e in errors:
                print(f"{name}: {e}")
        else:
            print(f"{name}: ok")
    if not files:
        print("no golden files found")
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
