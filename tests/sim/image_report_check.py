#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
# Validates `xbd image` JSON reports against image_report.schema.json
# with python3-jsonschema (a real validator: the schema itself is
# checked first, then each report; every violation is printed).
# usage: image_report_check.py REPORT.json...   exit 0 valid, 1 not
import json
import os
import sys

import jsonschema

schema_path = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           "image_report.schema.json")
with open(schema_path) as f:
    schema = json.load(f)
cls = jsonschema.validators.validator_for(schema)
cls.check_schema(schema)
validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
bad = 0
for path in sys.argv[1:]:
    with open(path) as f:
        report = json.load(f)
    errors = sorted(validator.iter_errors(report), key=lambda e: list(e.absolute_path))
    for e in errors:
        where = "/".join(str(p) for p in e.absolute_path) or "(top)"
        print(f"{path}: {where}: {e.message}")
    bad += bool(errors)
sys.exit(1 if bad else 0)
