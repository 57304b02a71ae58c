#!/usr/bin/env bash
# Lints the deployment: the SAM template (sam validate --lint, cfn-lint with
# the serverless rules, checkov) and the IAM policies (parliament). Each tool
# is pinned and lives in its own virtual environment under .venv-tools/.
# Findings fail the script; suppressions are justified in template.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

# cfn-lint-serverless 0.3.6 needs cfn-lint >= 1.57 (0.3.5 is the last for 1.51).
sam=$(scripts/tools-env.sh sam aws-sam-cli==1.170.0)
cfn_lint=$(scripts/tools-env.sh cfn-lint cfn-lint==1.58.0 cfn-lint-serverless==0.3.6)
checkov=$(scripts/tools-env.sh checkov checkov==3.3.30)
parliament=$(scripts/tools-env.sh parliament parliament==1.6.4)

echo "== sam validate --lint" >&2
SAM_CLI_TELEMETRY=0 "$sam/sam" validate --lint --region us-east-1 --template template.yaml

echo "== cfn-lint with the serverless rules" >&2
"$cfn_lint/cfn-lint" -a cfn_lint_serverless.rules -- template.yaml

echo "== checkov" >&2
"$checkov/checkov" --skip-download --quiet --compact --framework cloudformation --file template.yaml

echo "== parliament" >&2
for policy in policies/*.json; do
    # --string, not --file: parliament refuses --file whenever standard input
    # is not a terminal (as in CI).
    "$parliament/parliament" --string "$(cat "$policy")"
    echo "$policy: no findings" >&2
done
echo "== lints passed in $(( $(date +%s) - start )) s" >&2
