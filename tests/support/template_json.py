"""Prints template.yaml as JSON, CloudFormation tags in their long form
(``!Ref X`` becomes ``{"Ref": "X"}``, ``!If [...]`` becomes ``{"Fn::If": [...]}``),
so that tests/deploy.rs can read the template's shape with serde_json.

Usage: template_json.py TEMPLATE
"""

import json
import sys

import yaml

from policies_match import Loader


def main(template_path):
    with open(template_path) as f:
        template = yaml.load(f, Loader=Loader)
    json.dump(template, sys.stdout, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
