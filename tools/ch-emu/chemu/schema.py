"""Request-body validation and default filling, driven by the OpenAPI v54 YAML.

Nothing here lists fields by hand (one documented exception, SPEC_ADDITIONS: NetConfig.fds):
the validator walks the schema ($ref, type, required, properties, additionalProperties, enum,
integer format, minimum/maximum, minLength, items).
It is deliberately stricter than cloud-hypervisor's serde in one way: unknown properties are
rejected everywhere (so a misspelt field fails a test instead of being ignored), and, like the
Rust types behind the spec, request integers are unsigned. Messages follow serde_json's wording
prefixed with the JSON path of the offending value, e.g.
  "memory.size: invalid type: string \"1G\", expected u64".
"""

import os
import pickle

# Rust type behind each OpenAPI integer format (serde's "expected ..." wording) and its range.
# Every integer in the v54 request bodies is unsigned in cloud-hypervisor, whatever the spec's
# format says, so the lower bound is 0; "chemu-i32" is only used by SPEC_ADDITIONS.
_INT_FORMATS = {
    "int8": ("u8", 0, 2**7 - 1),
    "int16": ("u16", 0, 2**15 - 1),
    "int32": ("u32", 0, 2**31 - 1),
    "int64": ("u64", 0, 2**63 - 1),
    "uint8": ("u8", 0, 2**8 - 1),
    "uint16": ("u16", 0, 2**16 - 1),
    "uint32": ("u32", 0, 2**32 - 1),
    "uint64": ("u64", 0, 2**64 - 1),
    "chemu-i32": ("i32", -(2**31), 2**31 - 1),
    None: ("u64", 0, 2**64 - 1),
}

# The one hand-written exception to "the spec file says it all". cloud-hypervisor's NetConfig
# has `fds: Option<Vec<i32>>` (serde default None) which the v54 OpenAPI file does not list:
# serde accepts it in vm.create / vm.add-net bodies (the numbers are then ignored: only fds
# passed with SCM_RIGHTS count) and vm.info prints it (each fd as -1). Added in memory only,
# right after the named property (serde field order); the YAML file stays a verbatim copy of
# ../shared/reference/cloud-hypervisor-openapi-v54.yaml. A spec that already has the property
# is left alone.
SPEC_ADDITIONS = {
    "NetConfig": [
        ("id", "fds", {"type": "array", "items": {"type": "integer", "format": "chemu-i32"}}),
    ],
}


def _load_spec(path):
    """The spec file parsed. Every ch-emu process needs it, one per VM, and parsing the YAML
    (and importing yaml) was a third of ch-emu's start-up: the result is kept pickled in
    __pycache__ beside this module (as trusted as the .pyc files there), named after the
    YAML's size and mtime. A directory that cannot be written just means no cache."""
    st = os.stat(path)
    cache = os.path.join(
        os.path.dirname(os.path.abspath(__file__)),
        "__pycache__",
        "%s.%d-%d.pickle" % (os.path.basename(path), st.st_size, st.st_mtime_ns),
    )
    try:
        with open(cache, "rb") as f:
            return pickle.load(f)
    except (OSError, pickle.UnpicklingError, EOFError):
        pass
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, "rb") as f:
        doc = yaml.load(f, Loader=loader)
    try:
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        tmp = "%s.%d.tmp" % (cache, os.getpid())
        with open(tmp, "wb") as f:
            pickle.dump(doc, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.rename(tmp, cache)
    except OSError:
        pass
    return doc


class SchemaError(Exception):
    """A body that does not match the schema; str() is the serde-like message."""


def _describe(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean `%s`" % ("true" if v else "false")
    if isinstance(v, int):
        return "integer `%d`" % v
    if isinstance(v, float):
        return "floating point `%s`" % v
    if isinstance(v, str):
        return 'string "%s"' % v
    if isinstance(v, list):
        return "sequence"
    return "map"


def _join(path, key):
    return "%s.%s" % (path, key) if path else key


class Schema:
    def __init__(self, doc):
        self.doc = doc
        self.components = doc.get("components", {}).get("schemas", {})
        for name, additions in SPEC_ADDITIONS.items():
            comp = self.components.get(name)
            if comp is None:
                continue
            for after, prop, pschema in additions:
                props = comp.setdefault("properties", {})
                if prop in props:
                    continue
                out = {}
                for k, v in props.items():
                    out[k] = v
                    if k == after:
                        out[prop] = pschema
                out.setdefault(prop, pschema)
                comp["properties"] = out

    @classmethod
    def load(cls, path=None):
        if path is None:
            path = os.environ.get("CH_EMU_OPENAPI") or os.path.join(
                os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                "cloud-hypervisor-openapi-v54.yaml",
            )
        return cls(_load_spec(path))

    def resolve(self, s):
        """Follow $ref chains; returns (schema, name-of-last-ref or None)."""
        name = None
        seen = 0
        while isinstance(s, dict) and "$ref" in s:
            ref = s["$ref"]
            if not ref.startswith("#/components/schemas/"):
                raise ValueError("unsupported $ref %r" % ref)
            name = ref.rsplit("/", 1)[1]
            s = self.components[name]
            seen += 1
            if seen > 64:
                raise ValueError("$ref loop at %r" % ref)
        return s, name

    def request_schema(self, endpoint, method):
        """Schema of the JSON body of `METHOD /endpoint`, or None if it takes no body."""
        op = self.doc.get("paths", {}).get("/" + endpoint, {}).get(method.lower())
        if not op:
            return None
        rb = op.get("requestBody")
        if not rb:
            return None
        return rb.get("content", {}).get("application/json", {}).get("schema")

    def component(self, name):
        return {"$ref": "#/components/schemas/" + name}

    # ---- validation
    def validate(self, value, schema, path=""):
        s, name = self.resolve(schema)
        t = s.get("type")
        if "enum" in s:
            if not isinstance(value, str) or value not in s["enum"]:
                if isinstance(value, str):
                    raise SchemaError(
                        "%sunknown variant `%s`, expected one of %s"
                        % (self._p(path), value, ", ".join("`%s`" % e for e in s["enum"]))
                    )
                raise SchemaError(
                    "%sinvalid type: %s, expected %s"
                    % (self._p(path), _describe(value), "enum " + (name or "value"))
                )
            return
        if t == "object" or (t is None and "properties" in s):
            self._validate_object(value, s, name, path)
        elif t == "array":
            if not isinstance(value, list):
                raise SchemaError(
                    "%sinvalid type: %s, expected a sequence" % (self._p(path), _describe(value))
                )
            items = s.get("items", {})
            for i, v in enumerate(value):
                self.validate(v, items, "%s[%d]" % (path, i))
        elif t == "string":
            if not isinstance(value, str):
                raise SchemaError(
                    "%sinvalid type: %s, expected a string" % (self._p(path), _describe(value))
                )
            if "minLength" in s and len(value) < s["minLength"]:
                raise SchemaError(
                    "%sinvalid length %d, expected at least %d characters"
                    % (self._p(path), len(value), s["minLength"])
                )
        elif t == "integer":
            rust, lo, hi = _INT_FORMATS.get(s.get("format"), _INT_FORMATS[None])
            if isinstance(value, bool) or not isinstance(value, int):
                raise SchemaError(
                    "%sinvalid type: %s, expected %s" % (self._p(path), _describe(value), rust)
                )
            if value < lo or value > hi:
                raise SchemaError(
                    "%sinvalid value: integer `%d`, expected %s" % (self._p(path), value, rust)
                )
            self._check_bounds(value, s, path)
        elif t == "number":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SchemaError(
                    "%sinvalid type: %s, expected f64" % (self._p(path), _describe(value))
                )
            self._check_bounds(value, s, path)
        elif t == "boolean":
            if not isinstance(value, bool):
                raise SchemaError(
                    "%sinvalid type: %s, expected a boolean" % (self._p(path), _describe(value))
                )

    @staticmethod
    def _p(path):
        return path + ": " if path else ""

    def _check_bounds(self, value, s, path):
        if "minimum" in s and value < s["minimum"]:
            raise SchemaError(
                "%sinvalid value: %s, expected a value >= %s"
                % (self._p(path), _describe(value), s["minimum"])
            )
        if "maximum" in s and value > s["maximum"]:
            raise SchemaError(
                "%sinvalid value: %s, expected a value <= %s"
                % (self._p(path), _describe(value), s["maximum"])
            )

    def _validate_object(self, value, s, name, path):
        if not isinstance(value, dict):
            raise SchemaError(
                "%sinvalid type: %s, expected struct %s"
                % (self._p(path), _describe(value), name or "object")
            )
        props = s.get("properties", {})
        addl = s.get("additionalProperties")
        for k, v in value.items():
            if k in props:
                if v is None and k not in s.get("required", []):
                    continue  # serde: Option<T> accepts null
                self.validate(v, props[k], _join(path, k))
            elif isinstance(addl, dict):
                self.validate(v, addl, _join(path, k))
            elif addl is True:
                continue
            else:
                expected = ", ".join("`%s`" % p for p in props)
                raise SchemaError(
                    "%sunknown field `%s`, expected one of %s"
                    % (self._p(_join(path, k)), k, expected)
                )
        for req in s.get("required", []):
            if req not in value or value[req] is None:
                raise SchemaError("%smissing field `%s`" % (self._p(path), req))

    # ---- defaults
    def fill_defaults(self, value, schema):
        """Copy of a valid value with every absent property that has a schema default filled
        in (recursively, following $ref; a $ref'd enum with a default counts)."""
        s, _ = self.resolve(schema)
        t = s.get("type")
        if isinstance(value, dict) and (t == "object" or "properties" in s):
            out = {}
            props = s.get("properties", {})
            for k, ps in props.items():  # schema order, like serde's field order
                if value.get(k) is not None:
                    out[k] = self.fill_defaults(value[k], ps)
                elif "default" in ps:
                    out[k] = ps["default"]
                else:
                    rs, _ = self.resolve(ps)
                    if "default" in rs and rs.get("type") != "object":
                        out[k] = rs["default"]
            for k, v in value.items():
                if k in props or v is None:
                    continue
                addl = s.get("additionalProperties")
                out[k] = self.fill_defaults(v, addl) if isinstance(addl, dict) else v
            return out
        if isinstance(value, list) and t == "array":
            return [self.fill_defaults(v, s.get("items", {})) for v in value]
        return value
