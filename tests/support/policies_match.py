"""Checks that the function role in template.yaml grants exactly the statements
of policies/reconciler.json (Permissions=read-write) and of
policies/reconciler-readonly.json (Permissions=read-only).

The template writes ARNs with !Sub and pseudo parameters; they are normalised
the way the policy files write them: partition ``aws``, region and account
``*``, every other parameter at its default. Then each statement is compared
by Sid: effect, actions, resources and conditions must be equal.

Usage: policies_match.py TEMPLATE POLICIES_DIR   (exit 1 and a diff on mismatch)
       policies_match.py --statement TEMPLATE SID [PARAMETER=VALUE ...]
           (prints the read-write statement SID as JSON, for those parameter values)
"""

import json
import re
import sys

import yaml

PSEUDO = {"AWS::Partition": "aws", "AWS::Region": "*", "AWS::AccountId": "*", "AWS::StackName": "stack"}
NO_VALUE = object()


class Loader(yaml.SafeLoader):
    pass


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {"Fn::" + suffix: value}


Loader.add_multi_constructor("!", _tag)


class Evaluator:
    def __init__(self, template, overrides):
        self.params = {k: str(v.get("Default", "")) for k, v in template.get("Parameters", {}).items()}
        self.params.update(overrides)
        self.conditions = template.get("Conditions", {})

    def condition(self, name):
        return bool(self.eval(self.conditions[name]))

    def eval(self, node):
        if isinstance(node, list):
            items = [self.eval(n) for n in node]
            return [i for i in items if i is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                if arg == "AWS::NoValue":
                    return NO_VALUE
                return PSEUDO.get(arg, self.params.get(arg))
            if key == "Fn::Sub":
                text, local = (arg, {}) if isinstance(arg, str) else (arg[0], {k: self.eval(v) for k, v in arg[1].items()})
                return re.sub(r"\$\{([^}]+)\}",
                              lambda m: str(local[m[1]]) if m[1] in local else PSEUDO.get(m[1], self.params.get(m[1], m[0])),
                              text)
            if key == "Fn::If":
                name, yes, no = arg
                return self.eval(yes if self.condition(name) else no)
            if key == "Fn::Equals":
                a, b = (self.eval(x) for x in arg)
                return a == b
            if key == "Fn::Not":
                return not self.eval(arg[0])
            if key == "Fn::Select":
                index, items = arg
                return self.eval(items)[int(index)]
            if key == "Fn::Split":
                sep, text = arg
                return self.eval(text).split(sep)
            if key == "Fn::Join":
                sep, items = arg
                return sep.join(self.eval(items))
        return {k: v for k, v in ((k, self.eval(v)) for k, v in node.items()) if v is not NO_VALUE}


def as_list(value):
    return sorted(value) if isinstance(value, list) else [value]


def normalise(statements):
    out = {}
    for s in statements:
        out[s.get("Sid", "?")] = {
            "Effect": s.get("Effect"),
            "Action": as_list(s.get("Action")),
            "Resource": as_list(s.get("Resource")),
            "Condition": s.get("Condition", {}),
        }
    return out


def template_statements(template, permissions):
    function = template["Resources"]["ReconcilerFunction"]["Properties"]
    documents = [p for p in function.get("Policies", []) if isinstance(p, dict) and "Statement" in p]
    if len(documents) != 1:
        raise SystemExit(f"expected one inline policy document in ReconcilerFunction, found {len(documents)}")
    return Evaluator(template, {"Permissions": permissions}).eval(documents[0]["Statement"])


def compare(name, expected, actual):
    problems = []
    for sid in sorted(set(expected) | set(actual)):
        if sid not in actual:
            problems.append(f"{name}: statement {sid} is in the policy file but not in template.yaml")
        elif sid not in expected:
            problems.append(f"{name}: statement {sid} is in template.yaml but not in the policy file")
        else:
            for field in ("Effect", "Action", "Resource", "Condition"):
                if expected[sid][field] != actual[sid][field]:
                    problems.append(
                        f"{name}: {sid}.{field} differs:\n  policy file:   {json.dumps(expected[sid][field])}"
                        f"\n  template.yaml: {json.dumps(actual[sid][field])}"
                    )
    return problems


def main(template_path, policies_dir):
    with open(template_path) as f:
        template = yaml.load(f, Loader=Loader)
    problems = []
    for permissions, file in (("read-write", "reconciler.json"), ("read-only", "reconciler-readonly.json")):
        with open(f"{policies_dir}/{file}") as f:
            expected = normalise(json.load(f)["Statement"])
        actual = normalise(template_statements(template, permissions))
        problems += compare(f"{file} vs Permissions={permissions}", expected, actual)
        if not problems:
            print(f"{file}: {len(expected)} statements match template.yaml (Permissions={permissions})")
    for p in problems:
        print(p)
    return 1 if problems else 0


def statement(template_path, sid, *assignments):
    with open(template_path) as f:
        template = yaml.load(f, Loader=Loader)
    function = template["Resources"]["ReconcilerFunction"]["Properties"]
    document = next(p for p in function["Policies"] if isinstance(p, dict) and "Statement" in p)
    overrides = {"Permissions": "read-write", **dict(a.split("=", 1) for a in assignments)}
    found = [s for s in Evaluator(template, overrides).eval(document["Statement"]) if s.get("Sid") == sid]
    if len(found) != 1:
        raise SystemExit(f"expected one statement {sid}, found {len(found)}")
    json.dump(found[0], sys.stdout)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--statement"]:
        sys.exit(statement(*sys.argv[2:]))
    sys.exit(main(*sys.argv[1:3]))
