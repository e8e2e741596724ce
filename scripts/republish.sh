#!/usr/bin/env bash
# Every run behind leaderboard/, then `bench publish` (issue 25: protocol 3 republishes everything).
# Usage: scripts/republish.sh [SECTION...]   sections: default mnist5k stream fashion corr da fewshot
#        (episodes, with the meta-learning strategies) multitask publish (none: all, in that order). Run from a clean checkout (records carry
#        the commit; `bench publish` refuses dirty ones): each `bench run` resumes, so an interrupted
#        section is re-run with the same command. RUNS=DIR (default runs/), JOBS=N (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-runs}
jobs=${JOBS:-2}
export HF_HUB_OFFLINE=1
lite=efficientnet-lite0
five=efficientnet-lite0,efficientnet-lite1,efficientnet-lite2,efficientnet-lite0-random,pixels
shifts="mnist5k->digits,digits->mnist5k,mnist5k@gaussian-noise:3"
run() { echo "+ bench run $*" >&2; bench run --jobs "$jobs" --no-progress "$@" >/dev/null; }
sections=("$@")
[ ${#sections[@]} -eq 0 ] && sections=(default mnist5k stream fashion corr da fewshot multitask publish)
for s in "${sections[@]}"; do
    case "$s" in
    default) run --out "$runs/mnist5k" ;;
    mnist5k) run --strategies scratch,linear-probe,finetune,lp-ft,lora,adapter,bitfit,knn,prototype \
                 --encoders "$lite" --tasks mnist5k --budgets 1,5,20 --out "$runs/mnist5k" ;;
    da) run --tasks "$shifts" --encoders "$lite" --budgets 10 --out "$runs/da" --strategies \
            linear-probe,finetune,tent,bn-adapt,dann,cdan,mcc,coral,importance,source-only-features,dann-features,cdan-features,mcc-features,coral-features,importance-features,entropy-features ;;
    stream) run --stream split-mnist5k --strategies finetune,ewc,si,lwf,rehearsal,joint --encoders "$lite" \
                --budgets 20 --out "$runs/stream" ;;
    fewshot)  # 1-shot in fewshot/, 5-shot in fewshot5/ (a folder each, so the two can run side by side)
        for spec in 5:1:15:600 5:5:15:600; do
            dir="$runs/fewshot"; [ "$spec" = 5:5:15:600 ] && dir="$runs/fewshot5"
            run --episodes "$spec" --tasks mnist5k --encoders "$lite" --out "$dir" --no-contamination \
                --forgetting off --strategies prototype,knn,linear-probe,protonet,fomaml,reptile,good-embedding --seeds 1
        done ;;
    corr)
        run --tasks mnist5k,digits --encoders "$five" --strategies linear-probe,finetune --budgets 10 --seeds 1 \
            --no-contamination --forgetting off --out "$runs/corr"
        bench rank --tasks mnist5k,digits --encoders "$five" --budget 10 --against "$runs/corr" >/dev/null
        mkdir -p "$runs/fewshot" && cp "$runs/corr/rank.json" "$runs/fewshot/rank.json" ;;
    fashion)
        run --tasks fashion-mnist --strategies linear-probe --budgets 1,2,5,10,20 --encoders "$five" --out "$runs/fashion"
        run --tasks fashion-mnist --strategies finetune --budgets 1,20 --encoders efficientnet-lite0,efficientnet-lite1,efficientnet-lite2 \
            --out "$runs/fashion"
        run --tasks fashion-mnist --strategies scratch --budgets 1,20 --encoders "$lite" --out "$runs/fashion" ;;
    multitask) run --multitask mnist5k,fashion-mnist,digits --strategies equal,uncertainty,gradnorm,pcgrad \
                   --encoders "$lite" --budgets 10 --out "$runs/multitask" ;;
    publish)  # the validator study's reports (bench tune --study) sit beside the DA records
        mkdir -p "$runs/da/validator-study" && cp benchmarks/defaults/validator-study/*.json "$runs/da/validator-study/"
        cp leaderboard/README.md "$runs/README.leaderboard.md" && rm -rf leaderboard  # no stale pages of gone tasks
        bench publish "$runs"/mnist5k "$runs"/da "$runs"/stream "$runs"/fewshot "$runs"/fewshot5 "$runs"/fashion \
            "$runs"/multitask --site leaderboard/
        cp "$runs/README.leaderboard.md" leaderboard/README.md ;;
    *) echo "republish: unknown section '$s' (default mnist5k stream fashion corr da fewshot multitask publish)" >&2
       exit 2 ;;
    esac
done
