// Compares two float32 .npy files of the same shape:
//   node compare.js A.npy B.npy [--max-rel X] [--rms-rel Y] [--label L]
// B is the reference.  Prints one line with the largest absolute error,
// that error over B's largest magnitude ("max_rel"), and the RMS error
// over B's RMS ("rms_rel"); exits 1 when a bound given is exceeded or the
// shapes differ.
'use strict';
const { readNpy } = require('./npy');


const args = process.argv.slice(2);
let maxRel = Infinity, rmsRel = Infinity, label = '';
const pos = [];
for (let i = 0; i < args.length; i++) {
        if (args[i] === '--max-rel') maxRel = Number(args[++i]);
        else if (args[i] === '--rms-rel') rmsRel = Number(args[++i]);
        else if (args[i] === '--label') label = args[++i] + ': ';
        else pos.push(args[i]);
}
const a = readNpy(pos[0]), b = readNpy(pos[1]);
if (a.shape.join('x') !== b.shape.join('x')) {
        console.log(`${label}shape ${a.shape.join('x')} differs from the reference's ${b.shape.join('x')}`);
        process.exit(1);
}
let maxAbs = 0, maxRef = 0, se = 0, sr = 0, bad = 0;
for (let i = 0; i < a.data.length; i++) {
        const d = Math.abs(a.data[i] - b.data[i]);
        if (!Number.isFinite(a.data[i])) bad++;
        maxAbs = Math.max(maxAbs, d);
        maxRef = Math.max(maxRef, Math.abs(b.data[i]));
        se += d * d;
        sr += b.data[i] * b.data[i];
}
const mr = maxRef > 0 ? maxAbs / maxRef : maxAbs, rr = sr > 0 ? Math.sqrt(se / sr) : Math.sqrt(se);
const ok = !bad && mr <= maxRel && rr <= rmsRel;
console.log(`${label}${a.data.length} values: max_abs ${maxAbs.toExponential(3)} max_rel ${mr.toExponential(3)} ` +
        `rms_rel ${rr.toExponential(3)}${bad ? ` (${bad} not finite)` : ''}${ok ? '' : ' OVER THE BOUND'}`);
process.exit(ok ? 0 : 1);
