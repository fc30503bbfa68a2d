#!/usr/bin/env bash
# Renders a `lowbit report` page in headless Chromium, as a person would look at it, and checks:
#  - Chromium loads it without console errors,
#  - the screenshot is not blank (enough non-white pixels, several colours: tests/tools/png_stats),
#  - the rendered DOM holds every expected figure.
# Usage: chromium_render_test.sh LOWBIT PNG_STATS WORK_DIR
# Exit 77 (CTest's SKIP_RETURN_CODE for this test) when no Chromium is installed.
set -euo pipefail
LOWBIT="$1"
PNG_STATS="$2"
W="$3"

BROWSER=""
for b in chromium chromium-browser; do
  if command -v "$b" > /dev/null 2>&1; then BROWSER="$b"; break; fi
done
if [[ -z "$BROWSER" ]]; then
  echo "SKIP: no chromium on PATH; install Debian's 'chromium' package (scripts/setup.sh does) to run this check"
  exit 77
fi

rm -rf "$W"
mkdir -p "$W/runs/cnn-fp32" "$W/runs/cnn-w4a4" "$W/runs/gpt" "$W/study" "$W/hess" "$W/mixed"
# Synthetic outputs in the formats lowbit writes (a real training run would take minutes).
cat > "$W/runs/cnn-fp32/config.json" <<'JSON'
{"model": "cnn", "epochs": 3, "batch_size": 128, "optimizer": "adamw", "lr": 0.001, "data_dir": "",
 "provenance": {"command": "lowbit train --model cnn --epochs 3 --out runs/cnn-fp32", "host": "ci-1",
                "cpu": "AMD EPYC", "logical_cores": 2, "isa": "avx2", "os": "Linux 6.1 x86_64",
                "date_utc": "2026-12-01T20:00:00Z"}}
JSON
cat > "$W/runs/gpt/config.json" <<'JSON'
{"model": "gpt-tiny", "epochs": 1, "batch_size": 8, "optimizer": "adamw", "lr": 0.001, "lm": {"layers": 2, "width": 32}}
JSON
cat > "$W/runs/gpt/metrics.jsonl" <<'JSON'
{"epoch":1,"step":10,"train_loss":3.0,"train_bits_per_byte":4.33,"train_acc":0.2,"val_loss":2.9,"val_bits_per_byte":4.18,"val_acc":0.22,"seconds":1.0}
{"epoch":1,"step":20,"train_loss":2.2,"train_bits_per_byte":3.17,"train_acc":0.35,"val_loss":2.3,"val_bits_per_byte":3.32,"val_acc":0.33,"seconds":1.0}
JSON
cat > "$W/robust.json" <<'JSON'
{"analysis":"robustness","checkpoint":"runs/cnn-fp32/checkpoint.pt","model":"cnn","split":"test","seed":0,
 "clean":{"corruption":"clean","severity":0,"count":1000,"accuracy":0.90,"loss":0.3,"ece":0.02},
 "mean_corruption_accuracy":0.7,"mean_corruption_ece":0.08,"shifted":[
 {"corruption":"gaussian_noise","severity":1,"count":1000,"accuracy":0.85,"loss":0.4,"ece":0.04},
 {"corruption":"gaussian_noise","severity":3,"count":1000,"accuracy":0.60,"loss":1.1,"ece":0.12},
 {"corruption":"rotate","severity":1,"count":1000,"accuracy":0.80,"loss":0.6,"ece":0.05},
 {"corruption":"rotate","severity":3,"count":1000,"accuracy":0.55,"loss":1.4,"ece":0.11}]}
JSON
cat > "$W/mixed/sensitivity.json" <<'JSON'
{"analysis":"sensitivity","checkpoint":"runs/cnn-fp32","model":"cnn","method":"rtn","fp_loss":0.27,"fp_accuracy":0.904,
 "layers":[{"name":"conv1","params":320,"macs":250000,"hessian_trace":12.0,
            "weights":[{"format":"int","bits":4,"loss":0.28,"delta_loss":0.01,"accuracy":0.9},
                       {"format":"ternary","bits":2,"loss":0.6,"delta_loss":0.33,"accuracy":0.7}],
            "activations":[{"bits":4,"loss":0.29,"delta_loss":0.02,"accuracy":0.9}]},
           {"name":"fc1","params":40000,"macs":40000,"hessian_trace":3.0,
            "weights":[{"format":"int","bits":4,"loss":0.271,"delta_loss":0.001,"accuracy":0.904},
                       {"format":"ternary","bits":2,"loss":0.3,"delta_loss":0.03,"accuracy":0.89}],
            "activations":[{"bits":4,"loss":0.275,"delta_loss":0.005,"accuracy":0.9}]}]}
JSON
point() {  # label bits_per_param delta weight_bits
  echo "{\"label\":\"$1\",\"bytes\":$(( ${2%.*} * 5000 )),\"bits_per_param\":$2,\"bops\":1e9,\"latency_ms\":0.2,\"predicted_delta_loss\":$3,
   \"layers\":[{\"name\":\"conv1\",\"weight_format\":\"int\",\"weight_bits\":8,\"act_bits\":8},
             {\"name\":\"fc1\",\"weight_format\":\"int\",\"weight_bits\":$4,\"act_bits\":4}]}"
}
cat > "$W/mixed/mixed_search.json" <<JSON
{"analysis":"mixed-precision","from":"sensitivity.json","budget":{"kind":"bytes","value":20000},
 "layers":[{"name":"conv1","params":320,"macs":250000},{"name":"fc1","params":40000,"macs":40000}],
 "choice":$(point mixed 4.1 0.006 4),"uniform":[$(point W8A8 8 0.0005 8),$(point W4A4 4 0.04 4)],
 "front":[$(point a 2.1 0.04 2),$(point b 4.1 0.006 4),$(point c 8.0 0.0005 8)],
 "pareto_qat":[{"point":0,"accuracy":0.86,"loss":0.4},{"point":1,"accuracy":0.9,"loss":0.29}]}
JSON
cat > "$W/profile.json" <<'JSON'
{"model":"cnn-w4a4.lbq","threads":1,"isa":"avx2","profile":[
 {"batch":1,"ops":[{"index":0,"node":"conv1","kind":"conv2d","kernel":"s8_conv","ms":0.05},
                   {"index":1,"node":"fc1","kind":"linear","kernel":"s8_gemm","ms":0.02}],"total_ms":0.07}]}
JSON
cat > "$W/runs/cnn-w4a4/config.json" <<'JSON'
{"model": "cnn", "epochs": 2, "batch_size": 128, "optimizer": "adamw", "lr": 0.0005, "data_dir": "",
 "qat": {"quantize": true, "weight_bits": 4, "weight_format": "int", "weight_granularity": "channel",
         "weight_estimator": "lsq", "act_bits": 4, "act_estimator": "lsq"}}
JSON
cat > "$W/runs/cnn-fp32/metrics.jsonl" <<'JSON'
{"epoch":1,"step":430,"train_loss":0.52,"train_acc":0.81,"val_loss":0.36,"val_acc":0.87,"seconds":22.0}
{"epoch":2,"step":860,"train_loss":0.31,"train_acc":0.89,"val_loss":0.29,"val_acc":0.895,"seconds":22.1}
{"epoch":3,"step":1290,"train_loss":0.26,"train_acc":0.905,"val_loss":0.26,"val_acc":0.907,"seconds":22.0}
{"epoch":3,"step":1290,"test_acc":0.9041,"test_loss":0.27,"test_count":10000}
JSON
cat > "$W/runs/cnn-w4a4/metrics.jsonl" <<'JSON'
{"epoch":1,"step":430,"train_loss":0.30,"train_acc":0.89,"val_loss":0.28,"val_acc":0.898,"seconds":18.0}
{"epoch":2,"step":860,"train_loss":0.27,"train_acc":0.90,"val_loss":0.27,"val_acc":0.902,"seconds":18.2}
{"epoch":2,"step":860,"test_acc":0.8990,"test_loss":0.28,"test_count":10000}
JSON
cat > "$W/study/study.json" <<'JSON'
{"study":"ptq-vs-qat","model":"cnn","fp32_accuracy":0.904,"fp32_loss":0.27,"act_bits":8,"qat_steps":200,
 "test_images":10000,"cells":[
 {"weight_bits":8,"method":"rtn","accuracy":0.903},{"weight_bits":8,"method":"qat-lsq","accuracy":0.904},
 {"weight_bits":4,"method":"rtn","accuracy":0.86},{"weight_bits":4,"method":"qat-lsq","accuracy":0.899},
 {"weight_bits":2,"method":"rtn","accuracy":0.12},{"weight_bits":2,"method":"qat-lsq","accuracy":0.85}]}
JSON
cat > "$W/basin.json" <<'JSON'
{"analysis":"basin","options":{"weight_bits":2,"epsilon":0.05},"fp32_loss":0.27,"fp32_accuracy":0.904,
 "methods":[{"method":"rtn","segment":[{"alpha":0,"loss":0.27},{"alpha":0.5,"loss":0.6},{"alpha":1,"loss":2.3}]}],
 "qat":{"steps":[{"step":0,"deployed_loss":2.3},{"step":50,"deployed_loss":0.5},{"step":100,"deployed_loss":0.28}],
        "first_step_within":100}}
JSON
echo '{"model":"cnn","top_eigenvalue":8.0,"trace":30.0,"near_zero_fraction":0.7,"parameter_count":1000}' > "$W/hess/summary.json"
{
  echo "eigenvalue,density"
  for i in $(seq 0 60); do echo "$i,$(( (i % 10) + 1 ))e-3"; done
} > "$W/hess/density.csv"

"$LOWBIT" report "$W/runs" "$W/study" "$W/basin.json" "$W/hess" "$W/robust.json" "$W/mixed" "$W/profile.json" \
  --out "$W/report.html"

# Chromium as root needs --no-sandbox; its own profile folder keeps it off the user's.
run_browser() {
  timeout 120 "$BROWSER" --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
    --user-data-dir="$W/profile" --enable-logging=stderr --v=0 "$@" "file://$W/report.html"
}
run_browser --screenshot="$W/report.png" --window-size=1280,2400 2> "$W/screenshot.log" > /dev/null || {
  echo "FAIL: chromium --screenshot failed:"; tail -n 20 "$W/screenshot.log"; exit 1; }
run_browser --dump-dom 2> "$W/dom.log" > "$W/dom.html" || {
  echo "FAIL: chromium --dump-dom failed:"; tail -n 20 "$W/dom.log"; exit 1; }

status=0
# Console messages from the page (a page without script should log none).
if grep -h "CONSOLE" "$W/screenshot.log" "$W/dom.log"; then
  echo "FAIL: the page logged to the browser console (above)"
  status=1
fi

read -r width height non_white colors < <("$PNG_STATS" "$W/report.png")
echo "screenshot: ${width}x${height}, $non_white non-white pixels, $colors colours"
if (( non_white * 100 < width * height * 3 )); then
  echo "FAIL: the screenshot is nearly blank (under 3% non-white pixels)"
  status=1
fi
if (( colors < 16 )); then
  echo "FAIL: only $colors colours in the screenshot (plots draw in several)"
  status=1
fi

for id in runs training fig-loss fig-accuracy ptq-vs-qat fig-ptq-vs-qat-0 basin fig-basin-segment-0 \
          fig-basin-qat-0 hessian fig-hessian-0 language-models fig-lm-bits-per-byte fig-lm-accuracy \
          robustness fig-robustness-mean fig-robustness-gaussian-noise fig-robustness-rotate \
          sensitivity fig-sensitivity-loss-0 fig-sensitivity-hessian-0 mixed-precision fig-mixed-front-0 \
          fig-mixed-qat-0 fig-mixed-bits-0 latency fig-latency-0; do
  if ! grep -q "id=\"$id\"" "$W/dom.html"; then
    echo "FAIL: figure or section '$id' missing from the rendered DOM"
    status=1
  fi
done
svgs=$(grep -o "<svg" "$W/dom.html" | wc -l)
echo "rendered DOM: $svgs SVG figures"
(( svgs == 17 )) || { echo "FAIL: expected 17 SVG figures, found $svgs"; status=1; }
[[ $status -eq 0 ]] && echo "PASS: report renders in $("$BROWSER" --version 2>/dev/null | head -n 1)"
exit $status
