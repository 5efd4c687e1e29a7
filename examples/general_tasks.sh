#!/usr/bin/env bash
# Evaluate a base model and its LFTF adapter on the bias tasks, MMLU and nine general
# tasks in one lm-eval call each. Usage: examples/general_tasks.sh BASE ADAPTER_DIR [ARGS]
#   examples/general_tasks.sh Qwen/Qwen2.5-7B runs/qwen2.5-7b
# For a model split over several GPUs add: --model_args ...,parallelize=True
set -euo pipefail
base=$1
adapter=$2
shift 2
# The paper reports ARC-Easy, ARC-Challenge, OpenBookQA and COPA among its nine general
# tasks; we complete the nine with BoolQ, PIQA, HellaSwag, WinoGrande and RTE.
general=arc_easy,arc_challenge,openbookqa,copa,boolq,piqa,hellaswag,winogrande,rte
tasks=genbiaseval,genhinteval,mmlu,$general
for args in "pretrained=$base,dtype=bfloat16" "pretrained=$base,peft=$adapter,dtype=bfloat16"; do
  lm_eval --model hf --model_args "$args" --tasks "$tasks" \
    --include_path "$(lftf-tasks-path)" --batch_size auto \
    --output_path "$adapter/lm_eval" "$@"
done
