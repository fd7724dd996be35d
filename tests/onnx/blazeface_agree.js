// BlazeFace outputs of npu-run against ONNX Runtime's: scores (outputs 0
// and 1, logits per anchor) and box regressors (outputs 2 and 3: dx, dy,
// w, h and six keypoints per anchor, in pixels from the anchor's centre).
// Both boxes of an anchor share its centre, so their IoU needs no anchors.
//   node blazeface_agree.js OURS_PREFIX ORT_PREFIX [--top K] [--min-iou X] [--max-score-err Y]
// Prints the mean IoU over the K anchors ONNX Runtime scores highest and the
// largest sigmoid score difference over all anchors; exits 1 past a bound.
'use strict';
const { readNpy } = require('./npy');


const args = process.argv.slice(2);
let top = 20, minIou = 0, maxErr = Infinity;
const pos = [];
for (let i = 0; i < args.length; i++) {
        if (args[i] === '--top') top = Number(args[++i]);
        else if (args[i] === '--min-iou') minIou = Number(args[++i]);
        else if (args[i] === '--max-score-err') maxErr = Number(args[++i]);
        else pos.push(args[i]);
}
const [ours, ort] = pos;
const sig = (x) => 1 / (1 + Math.exp(-x));
let scoreErr = 0;
const cand = [];
for (const [si, bi] of [[0, 2], [1, 3]]) {
        const sa = readNpy(`${ours}.${si}.npy`).data, sb = readNpy(`${ort}.${si}.npy`).data;
        const ba = readNpy(`${ours}.${bi}.npy`).data, bb = readNpy(`${ort}.${bi}.npy`).data;
        for (let k = 0; k < sb.length; k++) {
                scoreErr = Math.max(scoreErr, Math.abs(sig(sa[k]) - sig(sb[k])));
                cand.push({ s: sb[k], a: ba.subarray(16 * k, 16 * k + 4), b: bb.subarray(16 * k, 16 * k + 4) });
        }
}
function iou(p, q) {
        const ix = Math.max(0, Math.min(p[0] + p[2] / 2, q[0] + q[2] / 2) - Math.max(p[0] - p[2] / 2, q[0] - q[2] / 2));
        const iy = Math.max(0, Math.min(p[1] + p[3] / 2, q[1] + q[3] / 2) - Math.max(p[1] - p[3] / 2, q[1] - q[3] / 2));
        const inter = ix * iy, uni = Math.abs(p[2] * p[3]) + Math.abs(q[2] * q[3]) - inter;
        return uni > 0 ? inter / uni : 1;
}
cand.sort((x, y) => y.s - x.s);
let sum = 0;
const k = Math.min(top, cand.length);
for (let i = 0; i < k; i++) sum += iou(cand[i].a, cand[i].b);
const mean = sum / k;
const ok = mean >= minIou && scoreErr <= maxErr;
console.log(`box IoU ${mean.toFixed(4)} (mean over the ${k} top-scored anchors), score error ${scoreErr.toExponential(3)} ` +
        `(largest |sigmoid| difference over ${cand.length} anchors)${ok ? '' : ' OVER THE BOUND'}`);
process.exit(ok ? 0 : 1);
