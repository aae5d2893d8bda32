#!/usr/bin/python3
"""Parses Prometheus text exposition format from stdin with the Prometheus project's own Python client parser
(Debian: python3-prometheus-client; run with Debian's /usr/bin/python3) and prints one JSON object per sample: {"family", "type", "name", "labels",
"value"}. A malformed exposition makes the parser raise: exit status 1. Used by the metrics endpoint test."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

try:
    for family in text_string_to_metric_families(sys.stdin.read()):
        for s in family.samples:
            print(json.dumps({"family": family.name, "type": family.type, "name": s.name,
                              "labels": s.labels, "value": s.value}))
except Exception as e:  # the parser's error, as one line
    print("prom-parse: %s" % e, file=sys.stderr)
    sys.exit(1)
