#!/usr/bin/python3
"""Validates a shredkv portability export against its JSON Schemas.

usage: validate_export.py SCHEMA.json DOC.json LINE-SCHEMA.json DOC.ndjson

SCHEMA.json is docs/export-schema.json (the JSON document form), LINE-SCHEMA.json
docs/export-line-schema.json (one NDJSON line). DOC.json and DOC.ndjson are the two
forms of one person's export (tests/portability/export_sample_main.cc writes them).

Besides the schemas, it checks what JSON Schema cannot express
(docs/export-format.md): strict JSON (no NaN/Infinity tokens, no duplicate keys,
UTF-8), top-level key order and NDJSON line order, the item counts, every
ISO 8601 rendering against its integer ms, the sort orders (identifiers,
attribute names, events by (ts, seq), analytics in their events' order, notices by cursor),
base64 and the *_text / string_base64 rules, that analytics rows belong to the
exported events and person, and that both forms hold the same items.

Needs the jsonschema module (Debian: python3-jsonschema). Exit status: 0 valid,
1 invalid (every problem is printed, with its JSON path or NDJSON line), 2 usage
or unreadable input.
"""

import ast
import base64
import binascii
import json
import re
import sys

try:
    import jsonschema
except ImportError:  # pragma: no cover
    sys.stderr.write("validate_export.py: the jsonschema module is missing "
                     "(Debian package python3-jsonschema)\n")
    sys.exit(2)

DOC_KEYS = ["format", "version", "exported_at", "exported_at_iso", "person", "identifiers",
            "profile", "restriction", "consents", "events", "records", "analytics", "notices", "items"]
# Item type -> document section, in the fixed item order.
SECTIONS = [("person", "person"), ("identifier", "identifiers"), ("profile", "profile"),
            ("restriction", "restriction"), ("consent", "consents"), ("event", "events"),
            ("record", "records"), ("analytics", "analytics"), ("notice", "notices")]
TYPE_ORDER = {t: i for i, (t, _) in enumerate(SECTIONS)}
SINGLE = {"person", "profile", "restriction"}  # objects, not arrays, in the document

problems = []


def problem(where, message):
    problems.append(f"{where}: {message}")


# ---- strict JSON ----------------------------------------------------------

def _reject_constant(token):
    raise ValueError(f"non-standard JSON token {token}")


def _no_duplicates(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicate key {key!r}")
        obj[key] = value
    return obj


def parse_json(text):
    return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates)


def read_text(path):
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        sys.stderr.write(f"validate_export.py: cannot read {path}: {e}\n")
        sys.exit(2)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        problem(path, f"not UTF-8: {e}")
        return raw.decode("utf-8", errors="replace")


# ---- schema validation ----------------------------------------------------

def make_validators(doc_schema, line_schema):
    cls = jsonschema.Draft202012Validator
    for name, schema in (("document schema", doc_schema), ("line schema", line_schema)):
        try:
            cls.check_schema(schema)
        except jsonschema.exceptions.SchemaError as e:
            sys.stderr.write(f"validate_export.py: the {name} is not a valid draft 2020-12 schema: {e.message}\n")
            sys.exit(2)
    try:  # jsonschema >= 4.18
        from referencing import Registry, Resource
        registry = Registry().with_resources(
            [(s["$id"], Resource.from_contents(s)) for s in (doc_schema, line_schema)])
        return cls(doc_schema, registry=registry), cls(line_schema, registry=registry), \
            lambda ref: cls({"$ref": ref}, registry=registry)
    except ImportError:  # Debian 12: jsonschema 4.10
        store = {doc_schema["$id"]: doc_schema, line_schema["$id"]: line_schema}
        doc_v = cls(doc_schema, resolver=jsonschema.RefResolver.from_schema(doc_schema, store=store))
        line_resolver = jsonschema.RefResolver.from_schema(line_schema, store=store)
        line_v = cls(line_schema, resolver=line_resolver)
        return doc_v, line_v, lambda ref: cls({"$ref": ref}, resolver=line_resolver)


def pointer(path):
    return "/" + "/".join(str(p) for p in path)


def only_failing_unevaluated(error, failing):
    """True for an unevaluatedProperties error whose every key fails below."""
    if error.validator != "unevaluatedProperties":
        return False
    m = re.search(r"\((.*) (?:was|were) unexpected\)$", error.message)
    if not m:
        return False
    try:
        keys = ast.literal_eval("[" + m.group(1) + "]")
    except (ValueError, SyntaxError):
        return False
    base = tuple(error.absolute_path)
    return all(any(p[:len(base) + 1] == base + (k,) for p in failing) for k in keys)


def schema_errors(where, validator, instance):
    """Every schema violation as "where /json/path: message"."""
    out = []
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path)))
    # A property that fails its own schema also counts as "unevaluated" for
    # its parent object; report only the real failure underneath.
    failing = {tuple(e.absolute_path) for e in errors}
    errors = [e for e in errors if not only_failing_unevaluated(e, failing)]
    for e in errors:
        # For oneOf failures (typed values) show the closest branch's complaint.
        best = jsonschema.exceptions.best_match([e]) if e.context else e
        out.append(f"{where} {pointer(best.absolute_path)}: {best.message}")
    return out


# ---- checks JSON Schema cannot express -------------------------------------

def iso_from_ms(ms):
    """The writer's IsoTime: UTC with ms, "" outside years 0000..9999."""
    secs, rem = divmod(ms, 1000)
    days, sod = divmod(secs, 86400)
    # Howard Hinnant's civil_from_days.
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    if m <= 2:
        y += 1
    if y < 0 or y > 9999:
        return ""
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (y, m, d, sod // 3600, sod % 3600 // 60, sod % 60, rem)


def check_iso(where, ms, iso, zero_is_empty=False):
    if not isinstance(ms, int) or not isinstance(iso, str):
        return  # the schema reported it
    expect = "" if zero_is_empty and ms == 0 else iso_from_ms(ms)
    if iso != expect:
        problem(where, f"ISO time {iso!r} does not render {ms} ms (expected {expect!r})")


def b64(where, text):
    if not isinstance(text, str):
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        problem(where, f"not valid base64: {e}")
        return None


def is_utf8(raw):
    try:
        raw.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def utf8_key(s):
    return s.encode("utf-8", errors="surrogatepass")


def check_attributes(where, attrs):
    if not isinstance(attrs, dict):
        return
    names = list(attrs)
    if names != sorted(names, key=utf8_key):
        problem(where, "attribute names are not in byte order")
    for name, value in attrs.items():
        if isinstance(value, dict) and "timestamp" in value:
            check_iso(f"{where}/{name}/iso", value.get("timestamp"), value.get("iso"))
        if isinstance(value, dict) and "string_base64" in value:
            raw = b64(f"{where}/{name}/string_base64", value["string_base64"])
            if raw is not None and is_utf8(raw):
                problem(f"{where}/{name}", "string_base64 used for a string that is valid UTF-8")
        if isinstance(value, dict) and "bytes" in value:
            b64(f"{where}/{name}/bytes", value["bytes"])


def check_item(where, kind, item):
    """Semantic checks of one item (either form); `where` names it."""
    if not isinstance(item, dict):
        return
    if kind == "person":
        check_iso(f"{where}/created_iso", item.get("created"), item.get("created_iso"))
    elif kind == "profile":
        check_attributes(f"{where}/attributes", item.get("attributes"))
    elif kind == "restriction":
        check_iso(f"{where}/updated_iso", item.get("updated"), item.get("updated_iso"), zero_is_empty=True)
        for field in ("purposes", "categories"):
            names = item.get(field)
            if isinstance(names, list) and names != sorted(names):
                problem(f"{where}/{field}", "not sorted")
    elif kind == "consent":
        check_iso(f"{where}/time_iso", item.get("time"), item.get("time_iso"))
    elif kind == "event":
        check_iso(f"{where}/ts_iso", item.get("ts"), item.get("ts_iso"))
        check_attributes(f"{where}/properties", item.get("properties"))
    elif kind == "analytics":
        check_iso(f"{where}/ts_iso", item.get("ts"), item.get("ts_iso"))
        check_attributes(f"{where}/fields", item.get("fields"))
    elif kind == "notice":
        check_iso(f"{where}/time_iso", item.get("time"), item.get("time_iso"))
        names = item.get("names")
        if isinstance(names, list) and all(isinstance(n, str) for n in names) and \
                names != sorted(set(names), key=utf8_key):
            problem(f"{where}/names", "names are not sorted and unique")
    elif kind == "record":
        for field in ("key", "value"):
            raw = b64(f"{where}/{field}", item.get(field))
            if raw is None:
                continue
            text = item.get(field + "_text")
            if is_utf8(raw):
                if text != raw.decode("utf-8"):
                    problem(f"{where}/{field}_text", f"missing or not equal to the decoded {field}")
            elif text is not None:
                problem(f"{where}/{field}_text", f"present although the {field} is not UTF-8")


def check_collection(where, items):
    """Cross-item checks on the items of one export, grouped by type."""
    by = {t: [i for k, i in items if k == t and isinstance(i, dict)] for t, _ in SECTIONS}
    person = by["person"][0] if by["person"] else {}

    idents = [(i.get("id_type"), i.get("value")) for i in by["identifier"]]
    if all(isinstance(a, str) and isinstance(b, str) for a, b in idents) and \
            idents != sorted(set(idents), key=lambda p: (utf8_key(p[0]), utf8_key(p[1]))):
        problem(f"{where} identifiers", "not sorted by (id_type, value) or not unique")

    def ts_seq(i):
        return (i.get("ts"), i.get("seq"))

    keys = [ts_seq(i) for i in by["event"]]
    if all(isinstance(a, int) and isinstance(b, int) for a, b in keys) and keys != sorted(set(keys)):
        problem(f"{where} event", "not in (ts, seq) order or (ts, seq) repeated")

    events = {i.get("seq"): i for i in by["event"]}
    # Analytics rows follow their events' order; each names its event by seq.
    order = [ts_seq(events[r.get("seq")]) for r in by["analytics"] if r.get("seq") in events]
    if all(isinstance(a, int) and isinstance(b, int) for a, b in order) and order != sorted(set(order)):
        problem(f"{where} analytics", "not in the order of their events or an event's seq repeated")
    for n, row in enumerate(by["analytics"]):
        at = f"{where} analytics[{n}]"
        if row.get("anon_id") != person.get("anon_id"):
            problem(at, "anon_id is not the person's anon_id")
        event = events.get(row.get("seq"))
        if event is None:
            problem(at, "no exported event has this seq")
            continue
        # The row keeps only a coarse time: the event's time floored to the
        # store's analytics granularity (format 3), never later than it.
        ets, rts = event.get("ts"), row.get("ts")
        if event.get("name") != row.get("name") or not (
                isinstance(ets, int) and isinstance(rts, int) and rts <= ets):
            problem(at, "name differs from the event with this seq, or ts is later than the event's")
        props = event.get("properties") or {}
        for name, value in (row.get("fields") or {}).items():
            if props.get(name) != value:
                problem(at, f"field {name!r} is not the event's property value")

    cursors = [i.get("cursor") for i in by["notice"]]
    if all(isinstance(c, int) for c in cursors) and cursors != sorted(set(cursors)):
        problem(f"{where} notices", "not in cursor order")


# ---- the two forms ---------------------------------------------------------

def check_document(path, doc_v):
    text = read_text(path)
    try:
        doc = parse_json(text)
    except ValueError as e:
        problem(path, f"not strict JSON: {e}")
        return None
    problems.extend(schema_errors(path, doc_v, doc))
    if not isinstance(doc, dict):
        return None

    if list(doc) != DOC_KEYS and set(doc) == set(DOC_KEYS):
        problem(path, f"top-level keys out of order: {list(doc)} (expected {DOC_KEYS})")

    items = []
    for kind, section in SECTIONS:
        value = doc.get(section)
        if value is None:
            continue
        values = [value] if kind in SINGLE else (value if isinstance(value, list) else [])
        for n, item in enumerate(values):
            where = f"{path} /{section}" + ("" if kind in SINGLE else f"/{n}")
            check_item(where, kind, item)
            items.append((kind, item))
    check_collection(path, items)
    if isinstance(doc.get("items"), int) and doc["items"] != len(items):
        problem(f"{path} /items", f"says {doc['items']} but the document holds {len(items)} items")
    check_iso(f"{path} /exported_at_iso", doc.get("exported_at"), doc.get("exported_at_iso"))
    header = {k: doc.get(k) for k in DOC_KEYS[:4]}
    return header, items


def check_lines(path, line_v, line_schema, sub_validator):
    """sub_validator(uri) validates against the schema at an absolute URI."""
    text = read_text(path)
    if text and not text.endswith("\n"):
        problem(path, "the last line does not end with a newline")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    header, end, items = None, None, []
    last_order = -1
    for number, line in enumerate(lines, start=1):
        where = f"{path} line {number}"
        if end is not None:
            problem(where, "a line after the end line")
        try:
            obj = parse_json(line)
        except ValueError as e:
            problem(where, f"not strict JSON: {e}")
            continue
        errors = schema_errors(where, line_v, obj)
        if errors and isinstance(obj, dict):
            # oneOf says only "not valid under any"; ask the line type's schema.
            name = f"{obj.get('type')}_line"
            if name in line_schema["$defs"]:
                ref = f"{line_schema['$id']}#/$defs/{name}"
                errors = schema_errors(where, sub_validator(ref), obj) or errors
        problems.extend(errors)
        if not isinstance(obj, dict):
            continue
        kind = obj.get("type")
        if number == 1 and kind != "header":
            problem(where, "the first line is not the header")
        if kind == "header":
            if number != 1:
                problem(where, "a header line that is not the first line")
            header = obj
            continue
        if kind == "end":
            end = obj
            continue
        if kind not in TYPE_ORDER:
            continue  # the schema reported it
        order = TYPE_ORDER[kind]
        if order < last_order or (order == last_order and kind in SINGLE):
            problem(where, f"{kind} line out of order (order: header, person, identifier*, profile, "
                           "restriction, consent*, event*, record*, analytics*, notice*, end)")
        last_order = order
        item = {k: v for k, v in obj.items() if k != "type"}
        check_item(where, kind, item)
        items.append((kind, item))
    if header is None:
        problem(path, "no header line")
    if end is None:
        problem(path, "no end line (the export is incomplete)")
    elif isinstance(end.get("items"), int) and end["items"] != len(items):
        problem(f"{path} end line", f"says {end['items']} items but {len(items)} item lines precede it")
    for kind in ("person", "profile", "restriction"):
        if sum(1 for k, _ in items if k == kind) != 1:
            problem(path, f"expected exactly one {kind} line")
    check_collection(path, items)
    if header is not None:
        check_iso(f"{path} line 1 exported_at_iso", header.get("exported_at"), header.get("exported_at_iso"))
        header = {k: header.get(k) for k in DOC_KEYS[:4]}
    return header, items


def main(argv):
    if len(argv) != 5:
        sys.stderr.write(__doc__.split("\n\n")[1] + "\n")
        return 2
    schema_path, doc_path, line_schema_path, ndjson_path = argv[1:]
    schemas = []
    for p in (schema_path, line_schema_path):
        try:
            schemas.append(parse_json(read_text(p)))
        except ValueError as e:
            sys.stderr.write(f"validate_export.py: {p} is not JSON: {e}\n")
            return 2
    doc_v, line_v, sub_validator = make_validators(*schemas)

    from_doc = check_document(doc_path, doc_v)
    from_lines = check_lines(ndjson_path, line_v, schemas[1], sub_validator)

    if from_doc is not None and from_lines is not None:
        (doc_header, doc_items), (line_header, line_items) = from_doc, from_lines
        if line_header is not None:
            for k in ("format", "version"):
                if doc_header[k] != line_header[k]:
                    problem("forms", f"{k} differs between {doc_path} and {ndjson_path}")
        if doc_items != line_items:
            n = next((i for i, (a, b) in enumerate(zip(doc_items, line_items)) if a != b),
                     min(len(doc_items), len(line_items)))
            problem("forms", f"{doc_path} and {ndjson_path} hold different items "
                             f"({len(doc_items)} vs {len(line_items)}; first difference at item {n})")

    for p in problems:
        print(f"INVALID {p}")
    if problems:
        print(f"validate_export.py: {len(problems)} problem(s)")
        return 1
    print(f"validate_export.py: {doc_path} and {ndjson_path} are valid "
          f"({len(from_doc[1]) if from_doc else 0} items)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
