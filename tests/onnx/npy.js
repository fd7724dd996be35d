// Float32 .npy files for the model tests' node scripts (C order, format
// 1.0 to 3.0 read, 1.0 written).
'use strict';
const fs = require('fs');

function readNpy(file) {
        const b = fs.readFileSync(file);
        if (b.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(file + ': not a .npy file');
        const major = b[6];
        const hlen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
        const start = major === 1 ? 10 : 12;
        const header = b.toString('latin1', start, start + hlen);
        if (!/'descr': '<f4'/.test(header) || /'fortran_order': True/.test(header))
                throw new Error(file + ': only C-order float32 arrays are read here');
        const shape = header.match(/'shape': \(([^)]*)\)/)[1].split(',').filter((s) => s.trim()).map(Number);
        const off = start + hlen;
        return { shape, data: new Float32Array(b.buffer.slice(b.byteOffset + off, b.byteOffset + b.length)) };
}

function writeNpy(file, shape, data) {
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + shape.join(', ') + (shape.length === 1 ? ',' : '') + '), }';
        const total = 10 + header.length + 1;
        header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
        const h = Buffer.alloc(10);
        h.write('\x93NUMPY', 0, 'latin1');
        h[6] = 1;
        h[7] = 0;
        h.writeUInt16LE(header.length, 8);
        fs.writeFileSync(file, Buffer.concat([h, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}

module.exports = { readNpy, writeNpy };
