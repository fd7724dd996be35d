// The float reference: ONNX Runtime (npm onnxruntime-node, CPU) runs MODEL
// on every sample of IN.npy and writes OUT.<j>.npy for each output j, in
// the model's order, stacked as npu-run stacks them.  It also prints the
// median latency of the runs.
//   node ort_run.js MODEL IN.npy OUT [--threads N] [--runs R] [--extra-axis]
// (an IN of one more dimension than the model's input has its samples on an
// extra leading axis, without --extra-axis)
'use strict';
const path = require('path');
const { readNpy, writeNpy } = require('./npy');

function ortModule() {
        const dir = process.env.BWQ_NODE_MODULES || path.join(__dirname, '../../build/npm/node_modules');
        return require(path.join(dir, 'onnxruntime-node'));
}



async function main() {
        const args = process.argv.slice(2);
        let threads = 1, runs = 1, extra = false;
        const pos = [];
        for (let i = 0; i < args.length; i++) {
                if (args[i] === '--threads') threads = Number(args[++i]);
                else if (args[i] === '--runs') runs = Number(args[++i]);
                else if (args[i] === '--extra-axis') extra = true;
                else pos.push(args[i]);
        }
        if (pos.length !== 3) throw new Error('usage: ort_run.js MODEL IN.npy OUT [--threads N] [--runs R] [--extra-axis]');
        const [model, input, out] = pos;
        const ort = ortModule();
        const sess = await ort.InferenceSession.create(model, {
                intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', logSeverityLevel: 3,
        });
        const meta = sess.inputMetadata ? sess.inputMetadata[0] : null;
        const x = readNpy(input);
        // [N, ...the input's shape]: samples on an extra axis, as npu-run reads them.
        if (meta && meta.shape && x.shape.length === meta.shape.length + 1) extra = true;
        // Samples as npu-run takes them: an extra leading axis, or the batch axis.
        const sampleShape = extra ? x.shape.slice(1) : [1].concat(x.shape.slice(1));
        const n = extra ? x.shape[0] : x.shape[0];
        const per = sampleShape.reduce((a, b) => a * b, 1);
        const outs = sess.outputNames.map(() => []);
        const outShapes = [];
        const times = [];
        for (let s = 0; s < n; s++) {
                const t = new ort.Tensor('float32', x.data.slice(s * per, (s + 1) * per), sampleShape);
                let res;
                for (let r = 0; r < runs; r++) {
                        const a = process.hrtime.bigint();
                        res = await sess.run({ [sess.inputNames[0]]: t });
                        times.push(Number(process.hrtime.bigint() - a) / 1e6);
                }
                sess.outputNames.forEach((name, j) => {
                        // Integer outputs (ArgMax's int64) as float32, as npu-run writes them.
                        const d = res[name].data;
                        outs[j].push(d instanceof Float32Array ? d : Float32Array.from(d, Number));
                        outShapes[j] = res[name].dims;
                });
        }
        sess.outputNames.forEach((name, j) => {
                const len = outs[j].reduce((a, d) => a + d.length, 0);
                const all = new Float32Array(len);
                let o = 0;
                for (const d of outs[j]) {
                        all.set(d, o);
                        o += d.length;
                }
                const shape = extra ? [n].concat(outShapes[j]) : [outShapes[j][0] * n].concat(outShapes[j].slice(1));
                writeNpy(out + '.' + j + '.npy', shape, all);
        });
        times.sort((a, b) => a - b);
        console.log(JSON.stringify({ outputs: sess.outputNames, median_ms: times[Math.floor(times.length / 2)], runs: times.length, meta }));
}

main().catch((e) => {
        console.error('ort_run: ' + e.message);
        process.exit(1);
});
