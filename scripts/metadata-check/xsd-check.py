#!/usr/bin/env python3
"""Validate CSDL XML ($metadata) files against the OASIS EDMX/EDM XML schemas.

Usage: xsd-check.py SCHEMA_DIR FILE...
SCHEMA_DIR must contain edmx.xsd and edm.xsd (shipped by the npm package
odata-csdl in node_modules/odata-csdl/schemas). Uses lxml (libxml2).
Prints one line per problem as FILE:LINE: error: [xsd] MESSAGE and exits 1
if any file is not well-formed or not schema-valid.
"""
import os
import sys

from lxml import etree


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    schema_dir, files = argv[1], argv[2:]
    # edmx.xsd imports edm.xsd with a relative schemaLocation; parse from disk.
    schema = etree.XMLSchema(etree.parse(os.path.join(schema_dir, "edmx.xsd")))
    # Never fetch anything over the network, never expand external entities.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    failed = False
    for path in files:
        try:
            doc = etree.parse(path, parser)
        except etree.XMLSyntaxError as exc:
            failed = True
            for entry in exc.error_log:
                print(f"{path}:{entry.line}: error: [xml] {entry.message}")
            if not exc.error_log:
                print(f"{path}:-: error: [xml] {exc}")
            continue
        except OSError as exc:
            failed = True
            print(f"{path}:-: error: [xml] {exc}")
            continue
        if schema.validate(doc):
            print(f"{path}: ok: [xsd] valid against OASIS edmx.xsd/edm.xsd")
        else:
            failed = True
            for entry in schema.error_log:
                print(f"{path}:{entry.line}: error: [xsd] {entry.message}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
