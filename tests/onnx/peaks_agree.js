// M-LSD's scores against ONNX Runtime's: the peak mask (scores kept where a
// 3x3 max-pool equals the value) is a discontinuous step, so a near-tie can
// fall either way, and in flat regions of tiny scores quantized values tie
// where float ones do not.  Peaks below --min-score (default 0: all) are
// not counted, as line detection drops them anyway.  Prints the share of
// positions where both keep or both drop a peak, and the largest
// difference where both keep one.
//   node peaks_agree.js OURS.npy ORT.npy [--min-agree X] [--max-err Y] [--min-score S]
'use strict';
const { readNpy } = require('./npy');
const args = process.argv.slice(2);
let minAgree = 0, maxErr = Infinity, minScore = 0;
const pos = [];
for (let i = 0; i < args.length; i++) {
        if (args[i] === '--min-agree') minAgree = Number(args[++i]);
        else if (args[i] === '--max-err') maxErr = Number(args[++i]);
        else if (args[i] === '--min-score') minScore = Number(args[++i]);
        else pos.push(args[i]);
}
const a = readNpy(pos[0]).data, b = readNpy(pos[1]).data;
let same = 0, both = 0, err = 0, ref = 0;
for (let i = 0; i < b.length; i++) {
        const pa = a[i] !== 0 && a[i] >= minScore, pb = b[i] !== 0 && b[i] >= minScore;
        if (pa === pb) same++;
        if (pb) ref++;
        if (pa && pb) {
                both++;
                err = Math.max(err, Math.abs(a[i] - b[i]));
        }
}
const agree = same / b.length;
const ok = a.length === b.length && agree >= minAgree && err <= maxErr;
console.log(`${minScore ? `peaks of score >= ${minScore} ` : 'peaks '}agree at ${(100 * agree).toFixed(3)}% of ${b.length} positions; ${both} of the reference's ${ref} kept by both, ` +
        `largest score difference there ${err.toExponential(3)}${ok ? '' : ' OVER THE BOUND'}`);
process.exit(ok ? 0 : 1);
