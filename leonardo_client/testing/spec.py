"""The bundled OpenAPI spec (openapi.json here): the one place the fake learns which paths exist and what each
request body may hold. Bodies are checked as Leonardo's Hasura layer does (unknown keys, missing or null required
keys, wrong types, values outside an enum), plus bounds, lengths, multipleOf and allOf / anyOf / oneOf / not
wherever a schema has them (the v2 schemas, and v1's contrast range); never ``format`` or ``pattern`` (the spec's
own example ids fail its UUIDv4 pattern: API_FACTS 4), nor ``uniqueItems`` (_check_bounds says why). Within the v2
envelope an object is open to other keys unless its schema closes it, as JSON Schema reads it: Leonardo documents
keys its v2 schemas do not list (an element's akUUID, an image reference's strength)."""

from __future__ import annotations

import copy
import functools
import json
import math
import pkgutil
import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Set, Tuple, Union
from urllib.parse import unquote, urlsplit

from ..payloads import MAX_INT, with_article
from .server import ApiError

# Handlers are named after the Client's methods: the operationId in snake_case, but for these.
_RENAMED = {"getUserSelf": "get_user_info", "getModels": "get_models_v2"}

# The spec marks nothing required on POST /generations-texture, yet the API refuses a body
# without prompt or modelAssetId: there, non-nullable properties are treated as required.
_NON_NULLABLE_IS_REQUIRED = {"create_texture_generation"}

# Parameters a model's schema leaves open (not closed by additionalProperties) that the API refuses:
# "The mode parameter of gpt-image-1.5 and ideogram-v3.0 fails after 2026-05-04 -> quality".
_RETIRED_PARAMETERS = {"gpt-image-1.5": "mode", "ideogram-v3.0": "mode"}

# Parameters some models' schemas type "number" (motion_2.0, veo-3.1-*, seedance-*) that the API keeps as whole
# numbers: the generation's seed is an integer where it is read back (GET /generations/{id}, the user's listing),
# so 1.5 is refused there as an integer-typed seed (phoenix's) refuses it.
_WHOLE_NUMBER_PARAMETERS = ("seed",)

# Where a value is in a body: the keys (str) and array indexes (int) to it. A key "0" and the index 0 differ.
Where = Tuple[Union[str, int], ...]

_GRAPHQL_NAMES = {"string": "String", "integer": "Int", "number": "Float", "boolean": "Boolean"}
_BOUNDS: List[Tuple[str, str, Tuple[type, ...], Callable[[Any], Any], str]] = [  # (lower, upper, of, measure, wording)
    ("minimum", "maximum", (int, float), lambda value: value, "be"),
    ("minLength", "maxLength", (str,), len, "have a length"),
    ("minItems", "maxItems", (list,), len, "have a number of items"),
]


# A combination's refusals (anyOf, oneOf): check_request tells a v2 body lacking its sizes by them.
NO_COMBINATION, NOT_ONE_FORM = "matches none of the allowed combinations", "must match exactly one of the allowed forms"


def invalid(message: str, code: str = "validation-failed") -> ApiError:
    return ApiError(400, message, code)


class FieldError(ApiError):
    """A 400 of Hasura's parser at one value of a body, at where. On a v1 POST
    the envelope's path names it (Spec.check_body); elsewhere the path stays "$"."""

    def __init__(self, message: str, where: Where, code: str = "validation-failed") -> None:
        super().__init__(400, message, code)
        self.where = where

    @property
    def label(self) -> str:
        """Where, as the fake's messages name a value: "controlnets[0].weight"."""
        return _label(self.where)


@functools.lru_cache(maxsize=None)
def load_spec() -> Dict[str, Any]:
    """openapi.json, read through this package's loader: a zip (zipapp, .pyz) has no file to open."""
    data = pkgutil.get_data(__package__, "openapi.json")
    if data is None:
        raise OSError("the bundled openapi.json cannot be read: %s's loader reads no data" % __package__)
    return json.loads(data.decode("utf-8"))  # type: ignore[no-any-return]


@functools.lru_cache(maxsize=1)
def bundled_spec() -> "Spec":
    """The Spec of openapi.json, made once: what generate and batch check a create call's body against."""
    return Spec(load_spec())


def json_type(value: Any) -> str:
    """The JSON name of value's type, as the API's messages say it."""
    kinds = [("null", type(None)), ("boolean", bool), ("number", (int, float)), ("string", str), ("array", list)]
    return next((name for name, kind in kinds if isinstance(value, kind)), "object")  # type: ignore[arg-type]


@dataclass(frozen=True)
class Operation:
    """One (method, path) of the spec."""

    name: str  # the handler's name
    body: Optional[Dict[str, Any]]  # the request body's schema
    query: Dict[str, Dict[str, Any]]  # query parameter name -> schema
    hasura: bool  # served by Hasura's REST layer (v1), not the v2 API
    action: Optional[str] = None  # a v1 POST's GraphQL field, the one key of its answer (sdGenerationJob)


class Spec:
    """Routes and body checks, both read from an OpenAPI document."""

    def __init__(self, document: Dict[str, Any]) -> None:
        self.document = document
        self.routes: List[Tuple[List[str], Dict[str, Operation]]] = []
        self.base: str = urlsplit(document["servers"][0]["url"]).path  # "/api/rest/v1": base_url's path
        self.roots: Set[str] = set()  # the servers' paths: "/api/rest/v1", "/api/rest"
        self._models: Optional[Dict[str, Dict[str, Any]]] = None
        for template, item in document["paths"].items():
            root = urlsplit((item.get("servers") or document["servers"])[0]["url"]).path.rstrip("/")
            self.roots.add(root)
            hasura = root == self.base
            ops = {m.upper(): self._operation(item[m], hasura, m) for m in item if m in ("get", "post", "delete")}
            self.routes.append(((root + template)[1:].split("/"), ops))
        # Hasura (v1) refuses a key outside an object's properties unless the schema says otherwise;
        # within the v2 envelope, bodies are read as JSON Schema: open unless additionalProperties is false.
        self.hasura = True
        self.json_schema = copy.copy(self)
        self.json_schema.hasura = False

    def _operation(self, op: Dict[str, Any], hasura: bool, method: str) -> Operation:
        snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", op["operationId"]).lower()
        body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        query = {p["name"]: p["schema"] for p in op.get("parameters", []) if p["in"] == "query"}
        # A v1 POST runs as a Hasura action: the field its answer is keyed by, taking the body as its argument arg1.
        answer = self.resolve(op["responses"]["200"]["content"]["application/json"]["schema"])
        action = next(iter(answer.get("properties", {})), None) if hasura and method == "post" else None
        return Operation(_RENAMED.get(op["operationId"], snake), body, query, hasura, action)

    def is_api(self, path: str) -> bool:
        return any(path == root or path.startswith(root + "/") for root in self.roots)

    def resolve(self, node: Dict[str, Any]) -> Dict[str, Any]:
        """node with its $ref followed (sibling keys such as "deprecated" are dropped)."""
        while "$ref" in node:
            node = functools.reduce(lambda n, part: n[part], node["$ref"][2:].split("/"), self.document)
        return node

    def route(self, path: str) -> Optional[Tuple[Dict[str, Operation], Dict[str, str]]]:
        """(operations by method, path parameters) for a request path, or None. A literal
        segment wins over a parameter; a parameter is one non-empty segment."""
        segments = [unquote(s) for s in path[1:].split("/")]
        found = []
        for pattern, operations in self.routes:
            if _fits(pattern, segments):
                found.append((operations, {p[1:-1]: s for p, s in zip(pattern, segments) if p.startswith("{")}))
        return min(found, key=lambda f: len(f[1]), default=None)

    def reaches(self, path: str) -> bool:
        """Whether a request path routes to an operation; one ending in "*", whether a path starting with the rest
        may (FakeLeonardo.inject refuses a fault's path that never matches)."""
        if not path.endswith("*"):
            return self.route(path) is not None
        *whole, part = [unquote(s) for s in path[1:-1].split("/")]
        n = len(whole)
        return any(len(p) > n and _fits(p[:n], whole) and p[n].startswith((part, "{")) for p, _ in self.routes)

    def query_args(self, operation: Operation, query: Dict[str, str], path: Dict[str, str]) -> Dict[str, Any]:
        """The query parameters of the spec that were given (and not empty), typed. Hasura refuses one
        that names none of its operation's variables (one no GraphQL name can be is dropped unread)."""
        if operation.hasura:
            known = {*operation.query, *path, *(operation.body or {}).get("properties", {})}
            for name in query:
                if name not in known and re.fullmatch("[_A-Za-z][_0-9A-Za-z]*", name):
                    raise invalid("Unexpected variable %s" % name, "bad-request")
        args: Dict[str, Any] = {name: query[name] for name in operation.query if query.get(name)}
        for name, raw in args.items():
            if operation.query[name].get("type") == "integer":
                if not re.fullmatch(r"\s*[+-]?[0-9]+\s*", raw):  # ASCII digits: int() would take others
                    raise invalid('expected an integer for query parameter "%s", but found "%s"' % (name, raw))
                args[name] = _check_int(int(raw))
        return args

    def check_body(self, operation: Operation, body: Any) -> None:
        """Raise ApiError(400) unless body fits the operation's request schema."""
        schema = operation.body or {"type": "object"}
        if not isinstance(body, dict):
            raise invalid("expected an object, but found %s" % json_type(body))
        if operation.name in _NON_NULLABLE_IS_REQUIRED:
            props = schema["properties"]
            schema = dict(schema, required=[k for k in props if not self.resolve(props[k]).get("nullable")])
        if "discriminator" not in schema:
            try:
                self.check(schema, body, ())
            except FieldError as exc:
                if operation.action:  # where the value is in the GraphQL the API runs, as Hasura writes a path:
                    # "$.selectionSet.sdGenerationJob.args.arg1.controlnets[0].weight"
                    exc.path = "$" + _steps(("selectionSet", operation.action, "args", "arg1") + exc.where)
                raise
        else:  # v2: the schemas leave out "parameters"; a model's required ones are missing then, not waived
            self.json_schema.check(schema, dict(body, parameters=body.get("parameters", {})), ())
            retired = _RETIRED_PARAMETERS.get(body["model"])
            if retired in body.get("parameters", {}):
                raise invalid("parameters.%s is no longer accepted for %s" % (retired, body["model"]))
            self._check_whole_numbers(body["model"], body.get("parameters") or {})

    def _check_whole_numbers(self, model: str, parameters: Dict[str, Any]) -> None:
        """Refuse a fractional _WHOLE_NUMBER_PARAMETERS value its model's schema lets through as a "number"."""
        props = self.models()[model]["properties"]["parameters"].get("properties", {})
        for key in _WHOLE_NUMBER_PARAMETERS:
            schema = self.resolve(props.get(key, {}))
            if schema.get("type") == "number" and isinstance(parameters.get(key), float):  # 7.0 was read as 7
                self.json_schema.check(dict(schema, type="integer"), parameters[key], ("parameters", key))

    # -- one JSON value against one schema; `where` is the path of keys and indexes to the value --------

    def check(self, schema: Dict[str, Any], value: Any, where: Where, closed: bool = True) -> None:
        schema = self._discriminated(self.resolve(schema), value)
        if value is None:
            if not schema.get("nullable", False):
                raise _non_nullable(where)
            return
        self._check_type(schema, value, where)
        enum = schema.get("enum")
        if enum is not None and not any(value == e and isinstance(value, bool) == isinstance(e, bool) for e in enum):
            raise _not_one_of(enum, _type_name(schema, where), value, where)
        self._check_bounds(schema, value, where)
        if isinstance(value, dict):
            self._check_object(schema, value, where, closed)
        for index, item in enumerate(value if isinstance(value, list) else ()):
            self.check(schema.get("items", {}), item, where + (index,))
        for sub in schema.get("allOf", ()):
            self.check(sub, value, where, closed=False)
        if "anyOf" in schema and not any(self._fits(s, value, where) for s in schema["anyOf"]):
            raise invalid("%s %s" % (_label(where), NO_COMBINATION))
        if "oneOf" in schema and sum(self._fits(s, value, where) for s in schema["oneOf"]) != 1:
            raise invalid("%s %s" % (_label(where), NOT_ONE_FORM))
        if "not" in schema and self._fits(schema["not"], value, where):
            raise invalid("%s is a combination that is not allowed" % _label(where))

    def _discriminated(self, schema: Dict[str, Any], value: Any) -> Dict[str, Any]:
        """The one schema of a discriminated oneOf that value names (v2: by its "model")."""
        if "discriminator" not in schema or not isinstance(value, dict):
            return schema
        key, mapping = schema["discriminator"]["propertyName"], schema["discriminator"]["mapping"]
        if not isinstance(value.get(key), str) or value[key] not in mapping:  # a list or object: not hashable
            raise _not_one_of(sorted(mapping), key, value.get(key), (key,))
        return self.resolve({"$ref": mapping[value[key]]})

    def operation(self, name: str) -> Operation:
        """The operation whose handler is ``name`` (the Client method: "create_generation_v2")."""
        return next(op for _, ops in self.routes for op in ops.values() if op.name == name)

    def models(self) -> Dict[str, Dict[str, Any]]:
        """The v2 models: name -> the schema of its POST /v2/generations body (found once: batch checks each item)."""
        if self._models is None:
            mapping = (self.operation("create_generation_v2").body or {})["discriminator"]["mapping"]
            self._models = {name: self.resolve({"$ref": ref}) for name, ref in mapping.items()}
        return self._models

    def _fits(self, schema: Dict[str, Any], value: Any, where: Where) -> bool:
        try:
            self.check(schema, value, where, closed=False)
        except ApiError:
            return False
        return True

    def _check_type(self, schema: Dict[str, Any], value: Any, where: Where) -> None:
        kind, found = schema.get("type"), json_type(value)
        # Hasura's Int (MAX_INT): 32 bits, from any JSON number that is a whole one; its own wording when not. The
        # title names the GraphQL type, whatever "type" says: userLoraId is a "number" titled Int.
        if schema.get("title") == "Int" and found == "number":
            _check_int(value, where)
        if kind in (None, found) or (kind == "integer" and found == "number" and isinstance(value, int)):
            return
        if kind == "array":
            raise FieldError("expected a list, but found %s" % found, where)
        message = "expected %s for type '%s', but found %s"
        raise FieldError(message % (with_article(kind), _type_name(schema, where), with_article(found)), where)

    def _check_bounds(self, schema: Dict[str, Any], value: Any, where: Where) -> None:
        for low, high, kinds, measure, wording in _BOUNDS:
            if not isinstance(value, kinds) or isinstance(value, bool):  # a bound of an untyped schema: its type only
                continue
            if low in schema and measure(value) < schema[low]:
                raise invalid("%s must %s at least %s" % (_label(where), wording, schema[low]))
            if high in schema and measure(value) > schema[high]:
                raise invalid("%s must %s at most %s" % (_label(where), wording, schema[high]))
        step = schema.get("multipleOf")
        if step and isinstance(value, (int, float)) and not math.isclose(value / step, round(value / step)):
            raise invalid("%s must be a multiple of %s" % (_label(where), step))
        # No uniqueItems check: every such array in the spec takes at most one item (maxItems, above).

    def _check_object(self, schema: Dict[str, Any], value: Dict[str, Any], where: Where, closed: bool) -> None:
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", not props if self.hasura or not where else True)
        for key in value:
            if key in props or extra is not False or not closed:
                continue
            if not where:
                raise invalid("Unexpected variable %s" % key, "bad-request")
            raise FieldError('field "%s" not found in type: \'%s\'' % (key, _type_name(schema, where)), where + (key,))
        for key in schema.get("required", ()):
            if value.get(key) is None:
                raise _non_nullable(where + (key,))
        for key, item in value.items():
            if key in props or isinstance(extra, dict):
                self.check(props.get(key, extra), item, where + (key,))


def _fits(pattern: List[str], segments: List[str]) -> bool:
    """Whether path segments fit a route's: a literal is itself, a {parameter} any segment not empty."""
    return len(pattern) == len(segments) and all(p == s or (p.startswith("{") and s) for p, s in zip(pattern, segments))


def _check_int(value: Any, where: Where = ()) -> Any:
    if isinstance(value, float) or not -MAX_INT - 1 <= value <= MAX_INT:  # a whole float was read as an int
        raise FieldError("The value %s lies outside the bounds or is not an integer. Maybe it is a float, "
                         "or is there integer overflow?" % value, where, "parse-failed")
    return value


def _not_one_of(values: List[Any], type_name: str, value: Any, where: Where) -> ApiError:
    return FieldError("expected one of the values %r for type '%s', but found %r" % (values, type_name, value), where)


def _non_nullable(where: Where) -> ApiError:
    """A null or missing value where one is required: a body key's is Hasura's check of its variables, before
    the query is parsed ("$"), a field's within it is the parser's."""
    message = "expecting a value for non-nullable %s" % _name(where)
    return invalid(message) if len(where) < 2 else FieldError(message, where)


def _steps(where: Where) -> str:
    """where as Hasura's encodeJSONPath writes it: an index in brackets, a key that is no name (a letter or "_",
    then letters, digits, "_" or "-") quoted as a JSON string in brackets: [0], ["0"], .weight."""
    return "".join(
        "[%d]" % key if isinstance(key, int)
        else "." + key if re.fullmatch("[A-Za-z_][0-9A-Za-z_-]*", key)
        else "[%s]" % json.dumps(key, ensure_ascii=False)
        for key in where
    )


def _label(where: Where) -> str:
    return _steps(where).lstrip(".") or "the body"


def _name(where: Where) -> str:
    last = where[-1] if where else "body"
    if isinstance(last, int):
        return "item: " + _steps((last,))
    return '%s: "%s"' % ("variable" if len(where) == 1 else "field", last)


def _type_name(schema: Dict[str, Any], where: Where) -> str:
    return str(schema.get("title") or _GRAPHQL_NAMES.get(schema.get("type", "")) or _label(where))
