#!/usr/bin/python3
# Small ONNX models, one per rewrite or op of the frontend, written with
# Debian's python3-onnx (onnx.helper), deterministic weights:
#   make_models.py OUTDIR
# Each model NAME.onnx comes with NAME.npy, two input samples [2, ...].
# The bad_*.onnx files are malformed on purpose (tests/onnx/models_test.sh).
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(20261201)


def init(name, a):
    return numpy_helper.from_array(np.asarray(a, dtype=np.float32) if np.asarray(a).dtype.kind == 'f' else np.asarray(a), name)


def w(*shape, scale=0.5):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def save(name, nodes, inputs, outputs, inits, opset=13, shape=None, samples=2, meta=None):
    g = helper.make_graph(nodes, name, inputs, outputs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid('', opset)], producer_name='bwq-tests')
    m.ir_version = 7
    for k, v in (meta or {}).items():
        p = m.metadata_props.add()
        p.key, p.value = k, v
    # Output shapes from ONNX's own inference, then the checker.
    inferred = onnx.shape_inference.infer_shapes(m)
    known = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    for o in m.graph.output:
        if o.name in known and known[o.name].type.tensor_type.HasField('shape'):
            o.type.CopyFrom(known[o.name].type)
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(out, name + '.onnx'))
    if shape is not None:
        np.save(os.path.join(out, name + '.npy'), rng.uniform(-1, 1, [samples] + list(shape)).astype(np.float32))


def tin(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def tout(name, shape=None):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


# Conv -> BatchNormalization -> Relu: BN folded into the Conv, Relu fused.
C = 8
save('conv_bn_relu', [
    helper.make_node('Conv', ['x', 'w', 'b'], ['c'], pads=[1, 1, 1, 1], name='conv'),
    helper.make_node('BatchNormalization', ['c', 'g', 'beta', 'mean', 'var'], ['bn'], epsilon=1e-3, name='bn'),
    helper.make_node('Relu', ['bn'], ['y'], name='relu'),
], [tin('x', [1, 3, 12, 12])], [tout('y')],
    [init('w', w(C, 3, 3, 3)), init('b', w(C)), init('g', rng.uniform(0.5, 2, C)), init('beta', w(C)),
     init('mean', w(C, scale=0.2)), init('var', rng.uniform(0.5, 2, C))], shape=[1, 3, 12, 12])

# Clip(0, 6) as Relu6 after a strided conv with auto_pad SAME_UPPER; Sigmoid
# after a 1x1 conv; Clip bounds as inputs (opset 13).
save('conv_clip_sigmoid', [
    helper.make_node('Conv', ['x', 'w1'], ['c1'], strides=[2, 2], auto_pad='SAME_UPPER', name='conv1'),
    helper.make_node('Clip', ['c1', 'lo', 'hi'], ['r6'], name='relu6'),
    helper.make_node('Conv', ['r6', 'w2', 'b2'], ['c2'], name='conv2'),
    helper.make_node('Sigmoid', ['c2'], ['y'], name='sigmoid'),
], [tin('x', [1, 4, 15, 15])], [tout('y')],
    [init('w1', w(6, 4, 3, 3)), init('lo', np.float32(0)), init('hi', np.float32(6)), init('w2', w(5, 6, 1, 1)),
     init('b2', w(5))], shape=[1, 4, 15, 15])

# HardSigmoid with its own alpha and beta after a conv: into the conv's scale.
save('conv_hardsigmoid', [
    helper.make_node('Conv', ['x', 'w', 'b'], ['c'], pads=[1, 1, 1, 1], group=2, name='grouped'),
    helper.make_node('HardSigmoid', ['c'], ['y'], alpha=0.2, beta=0.6, name='hsig'),
], [tin('x', [1, 4, 8, 8])], [tout('y')], [init('w', w(6, 2, 3, 3)), init('b', w(6))], shape=[1, 4, 8, 8])

# A classifier head: GlobalAveragePool, Flatten (a view), Gemm with transB,
# and MatMul + Add as a second head: both one fully connected layer.
save('gap_gemm_matmul', [
    helper.make_node('Conv', ['x', 'w', 'b'], ['c'], pads=[1, 1, 1, 1], name='conv'),
    helper.make_node('Relu', ['c'], ['r'], name='relu'),
    helper.make_node('GlobalAveragePool', ['r'], ['p'], name='gap'),
    helper.make_node('Flatten', ['p'], ['f'], name='flatten'),
    helper.make_node('Gemm', ['f', 'fw', 'fb'], ['y'], transB=1, alpha=0.5, name='fc'),
    helper.make_node('MatMul', ['f', 'mw'], ['mm'], name='matmul'),
    helper.make_node('Add', ['mm', 'mb'], ['y2'], name='bias'),
], [tin('x', [1, 3, 10, 10])], [tout('y'), tout('y2')],
    [init('w', w(16, 3, 3, 3)), init('b', w(16)), init('fw', w(10, 16)), init('fb', w(10)), init('mw', w(16, 7)),
     init('mb', w(7))], shape=[1, 3, 10, 10])

# Flatten of an NCHW tensor with H, W > 1 into a Gemm: the weights' columns
# follow the device's NHWC order; no data moves.
save('flatten_nchw_gemm', [
    helper.make_node('Conv', ['x', 'w'], ['c'], name='conv'),
    helper.make_node('Flatten', ['c'], ['f'], name='flatten'),
    helper.make_node('Gemm', ['f', 'fw'], ['y'], name='fc'),
], [tin('x', [1, 3, 5, 6])], [tout('y')], [init('w', w(4, 3, 1, 1)), init('fw', w(120, 9))], shape=[1, 3, 5, 6])

# Channel padding by Concat with zeros (ConstantOfShape), residual Add and
# MaxPool with ceil_mode; a Shape/Gather/Unsqueeze/Concat/Reshape chain
# folded to a constant shape; Transpose to NHWC and Reshape at the output.
save('pad_residual_fold', [
    helper.make_node('Conv', ['x', 'w1', 'b1'], ['c1'], pads=[1, 1, 1, 1], name='conv1'),
    helper.make_node('Relu', ['c1'], ['r1'], name='relu1'),
    helper.make_node('ConstantOfShape', ['zshape'], ['z'], name='zeros'),
    helper.make_node('Concat', ['r1', 'z'], ['padded'], axis=1, name='chanpad'),
    helper.make_node('Conv', ['r1', 'w2', 'b2'], ['c2'], pads=[1, 1, 1, 1], name='conv2'),
    helper.make_node('Add', ['c2', 'padded'], ['sum'], name='residual'),
    helper.make_node('Relu', ['sum'], ['r2'], name='relu2'),
    helper.make_node('MaxPool', ['r2'], ['mp'], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1, name='pool'),
    helper.make_node('Transpose', ['mp'], ['nhwc'], perm=[0, 2, 3, 1], name='to_nhwc'),
    helper.make_node('Shape', ['nhwc'], ['s'], name='shape'),
    helper.make_node('Gather', ['s', 'i0'], ['n'], axis=0, name='batch'),
    helper.make_node('Unsqueeze', ['n', 'ax0'], ['n1'], name='unsq'),
    helper.make_node('Concat', ['n1', 'rest'], ['newshape'], axis=0, name='catshape'),
    helper.make_node('Reshape', ['nhwc', 'newshape'], ['y'], name='reshape'),
], [tin('x', [1, 6, 9, 9])], [tout('y', [1, 16, 8])],
    [init('w1', w(6, 6, 3, 3)), init('b1', w(6)), init('zshape', np.array([1, 2, 9, 9], np.int64)),
     init('w2', w(8, 6, 3, 3)), init('b2', w(8)), init('i0', np.array(0, np.int64)), init('ax0', np.array([0], np.int64)),
     init('rest', np.array([-1, 8], np.int64))], shape=[1, 6, 9, 9])

# Unsqueeze axes given as a float NaN where an integer belongs.
m = onnx.load(os.path.join(out, 'pad_residual_fold.onnx'))
for t in m.graph.initializer:
    if t.name == 'ax0':
        t.CopyFrom(init('ax0', np.array([np.nan], np.float32)))
onnx.save(m, os.path.join(out, 'bad_float_axes.onnx'))

# The layer that a residual Add is fused into answers to both nodes'
# names: depth limits on the Add (whose output it writes) or on the Conv.
for name, node in (('residual_limits_add', 'residual'), ('residual_limits_conv', 'conv2')):
    m = onnx.load(os.path.join(out, 'pad_residual_fold.onnx'))
    p = m.metadata_props.add()
    p.key, p.value = 'bwq.layer_bits.' + node, '8:16'
    onnx.save(m, os.path.join(out, name + '.onnx'))

# A residual Add that stays a layer: its Conv's output is also read by
# another Conv, so the sum cannot replace it.
save('residual_kept', [
    helper.make_node('Conv', ['x', 'w1', 'b1'], ['c1'], pads=[1, 1, 1, 1], name='conv1'),
    helper.make_node('Add', ['c1', 'x'], ['sum'], name='residual'),
    helper.make_node('Relu', ['sum'], ['r'], name='relu'),
    helper.make_node('Conv', ['c1', 'w2', 'b2'], ['c2'], name='conv2'),
    helper.make_node('Add', ['r', 'c2'], ['y'], name='join'),
], [tin('x', [1, 6, 7, 7])], [tout('y')],
    [init('w1', w(6, 6, 3, 3)), init('b1', w(6)), init('w2', w(6, 6, 1, 1)), init('b2', w(6))], shape=[1, 6, 7, 7])

# A shortcut that is a layout view (Reshape there and back) is not taken
# into the Conv: a view may keep another order on the device.
save('residual_view', [
    helper.make_node('Relu', ['x'], ['xr'], name='relu0'),
    helper.make_node('Reshape', ['xr', 'flat'], ['xf'], name='to_rows'),
    helper.make_node('Reshape', ['xf', 'back'], ['xb'], name='to_nchw'),
    helper.make_node('Conv', ['xr', 'w1', 'b1'], ['c1'], pads=[1, 1, 1, 1], name='conv1'),
    helper.make_node('Add', ['c1', 'xb'], ['y'], name='residual'),
], [tin('x', [1, 4, 6, 6])], [tout('y')],
    [init('w1', w(4, 4, 3, 3)), init('b1', w(4)), init('flat', np.array([1, 4, 36], np.int64)),
     init('back', np.array([1, 4, 6, 6], np.int64))], shape=[1, 4, 6, 6])

# Squeeze-and-excite: GlobalAveragePool -> Conv -> Relu -> Conv ->
# HardSigmoid -> Mul with the block's input (broadcast), and an AveragePool.
save('squeeze_excite', [
    helper.make_node('Conv', ['x', 'w0', 'b0'], ['c0'], pads=[1, 1, 1, 1], name='conv0'),
    helper.make_node('GlobalAveragePool', ['c0'], ['gap'], name='se_pool'),
    helper.make_node('Conv', ['gap', 'w1', 'b1'], ['s1'], name='se_reduce'),
    helper.make_node('Relu', ['s1'], ['s1r'], name='se_relu'),
    helper.make_node('Conv', ['s1r', 'w2', 'b2'], ['s2'], name='se_expand'),
    helper.make_node('HardSigmoid', ['s2'], ['gate'], alpha=1.0 / 6, beta=0.5, name='se_gate'),
    helper.make_node('Mul', ['c0', 'gate'], ['scaled'], name='se_mul'),
    helper.make_node('AveragePool', ['scaled'], ['y'], kernel_shape=[2, 2], strides=[2, 2], name='avg'),
], [tin('x', [1, 3, 8, 8])], [tout('y')],
    [init('w0', w(12, 3, 3, 3)), init('b0', w(12)), init('w1', w(4, 12, 1, 1)), init('b1', w(4)),
     init('w2', w(12, 4, 1, 1)), init('b2', w(12))], shape=[1, 3, 8, 8])

# A MobileNetV3 block as exporters write it: the input normalised by Sub and
# Div (into the conversion), Conv + BatchNormalization + HardSwish written
# as x * Clip(x + 3, 0, 6) / 6, a depthwise Conv with HardSwish as
# Mul(Clip(3 + x, 0, 6), x) * 1/6, squeeze-and-excite whose gate is
# Clip(x + 3, 0, 6) / 6, a projection Conv scaled by a constant Mul, a
# residual Add, and a MatMul + Add classifier.
C = 8
save('mobilenetv3_block', [
    helper.make_node('Sub', ['x', 'mean'], ['xs'], name='norm_sub'),
    helper.make_node('Div', ['xs', 'std'], ['xn'], name='norm_div'),
    helper.make_node('Conv', ['xn', 'w0'], ['c0'], pads=[1, 1, 1, 1], strides=[2, 2], name='stem'),
    helper.make_node('BatchNormalization', ['c0', 'g0', 'b0', 'm0', 'v0'], ['bn0'], name='stem_bn'),
    helper.make_node('Add', ['bn0', 'three'], ['a0'], name='hs0_add'),
    helper.make_node('Clip', ['a0', 'zero', 'six'], ['r0'], name='hs0_clip'),
    helper.make_node('Mul', ['bn0', 'r0'], ['m0x'], name='hs0_mul'),
    helper.make_node('Div', ['m0x', 'six'], ['h0'], name='hs0_div'),
    helper.make_node('Conv', ['h0', 'wd', 'bd'], ['dw'], pads=[1, 1, 1, 1], group=C, name='depthwise'),
    helper.make_node('Add', ['three', 'dw'], ['a1'], name='hs1_add'),
    helper.make_node('Clip', ['a1', 'zero', 'six'], ['r1'], name='hs1_clip'),
    helper.make_node('Mul', ['r1', 'dw'], ['m1'], name='hs1_mul'),
    helper.make_node('Mul', ['m1', 'sixth'], ['h1'], name='hs1_scale'),
    helper.make_node('GlobalAveragePool', ['h1'], ['se0'], name='se_pool'),
    helper.make_node('Conv', ['se0', 'ws1', 'bs1'], ['se1'], name='se_reduce'),
    helper.make_node('Relu', ['se1'], ['se1r'], name='se_relu'),
    helper.make_node('Conv', ['se1r', 'ws2', 'bs2'], ['se2'], name='se_expand'),
    helper.make_node('Add', ['se2', 'three'], ['se3'], name='gate_add'),
    helper.make_node('Clip', ['se3', 'zero', 'six'], ['se4'], name='gate_clip'),
    helper.make_node('Div', ['se4', 'six'], ['gate'], name='gate_div'),
    helper.make_node('Mul', ['h1', 'gate'], ['scaled'], name='se_mul'),
    helper.make_node('Conv', ['scaled', 'wp'], ['proj'], name='project'),
    helper.make_node('Mul', ['proj', 'pscale'], ['projs'], name='project_scale'),
    helper.make_node('Add', ['projs', 'h0'], ['res'], name='residual'),
    helper.make_node('GlobalAveragePool', ['res'], ['pool'], name='head_pool'),
    helper.make_node('Flatten', ['pool'], ['flat'], name='flatten'),
    helper.make_node('MatMul', ['flat', 'wfc'], ['logits0'], name='classifier'),
    helper.make_node('Add', ['logits0', 'bfc'], ['y'], name='classifier_bias'),
], [tin('x', [1, 3, 16, 16])], [tout('y')],
    [init('mean', np.array([0.485, 0.456, 0.406], np.float32).reshape(1, 3, 1, 1)),
     init('std', np.array([0.229, 0.224, 0.225], np.float32).reshape(1, 3, 1, 1)),
     init('w0', w(C, 3, 3, 3, scale=0.3)), init('g0', rng.uniform(0.5, 1.5, C)), init('b0', w(C)),
     init('m0', w(C, scale=0.1)), init('v0', rng.uniform(0.5, 2, C)), init('three', np.float32(3)),
     init('zero', np.float32(0)), init('six', np.float32(6)), init('sixth', np.float32(1 / 6)),
     init('wd', w(C, 1, 3, 3)), init('bd', w(C)), init('ws1', w(4, C, 1, 1)), init('bs1', w(4)),
     init('ws2', w(C, 4, 1, 1)), init('bs2', w(C)), init('wp', w(C, C, 1, 1)),
     init('pscale', rng.uniform(0.5, 1.5, C).astype(np.float32).reshape(1, C, 1, 1)),
     init('wfc', w(C, 10)), init('bfc', w(10))], shape=[1, 3, 16, 16])

# A classifier whose head the device cannot finish: Softmax and ArgMax run
# on the host after the device's layers (host fallback).
save('softmax_head', [
    helper.make_node('Conv', ['x', 'w'], ['c'], pads=[1, 1, 1, 1], name='conv'),
    helper.make_node('Relu', ['c'], ['r'], name='relu'),
    helper.make_node('GlobalAveragePool', ['r'], ['p'], name='pool'),
    helper.make_node('Flatten', ['p'], ['f'], name='flatten'),
    helper.make_node('Gemm', ['f', 'fw', 'fb'], ['logits'], transB=1, name='fc'),
    helper.make_node('Softmax', ['logits'], ['y'], axis=-1, name='softmax'),
    helper.make_node('ArgMax', ['logits'], ['y2'], axis=1, keepdims=1, name='argmax'),
], [tin('x', [1, 3, 8, 8])], [tout('y'), helper.make_tensor_value_info('y2', TensorProto.INT64, [1, 1])],
    [init('w', w(8, 3, 3, 3)), init('fw', w(10, 8)), init('fb', w(10))], shape=[1, 3, 8, 8])

# Elementwise ops of two device tensors that the device does not run, on
# the host between device segments: Max and Sub of tensors of one shape
# (the host's own loop), and a Max against a per-channel tensor, which
# broadcasts (the folder's evaluation).
save('host_elementwise', [
    helper.make_node('Conv', ['x', 'wa'], ['a'], pads=[1, 1, 1, 1], name='conv_a'),
    helper.make_node('Conv', ['x', 'wb'], ['b'], pads=[1, 1, 1, 1], name='conv_b'),
    helper.make_node('Max', ['a', 'b'], ['mx'], name='max'),
    helper.make_node('Sub', ['mx', 'b'], ['d'], name='sub'),
    helper.make_node('Conv', ['d', 'wc'], ['y1'], name='conv_c'),
    helper.make_node('GlobalAveragePool', ['b'], ['g'], name='gap'),
    helper.make_node('Max', ['a', 'g'], ['y2'], name='max_bcast'),
], [tin('x', [1, 3, 8, 8])], [tout('y1'), tout('y2')],
    [init('wa', w(6, 3, 3, 3)), init('wb', w(6, 3, 3, 3)), init('wc', w(4, 6, 1, 1))], shape=[1, 3, 8, 8])

# A DBNet-style segmentation head: two scales of a backbone, the smaller
# upsampled by Resize nearest x2 and joined by Concat, then ConvTranspose x2
# twice (the second with a bias) and Sigmoid, all on the device.
save('dbnet_head', [
    helper.make_node('Conv', ['x', 'w1', 'b1'], ['c1'], pads=[1, 1, 1, 1], strides=[2, 2], name='stage1'),
    helper.make_node('Relu', ['c1'], ['r1'], name='relu1'),
    helper.make_node('Conv', ['r1', 'w2', 'b2'], ['c2'], pads=[1, 1, 1, 1], strides=[2, 2], name='stage2'),
    helper.make_node('Relu', ['c2'], ['r2'], name='relu2'),
    helper.make_node('Resize', ['r2', '', 'scales'], ['up'], mode='nearest', name='upsample'),
    helper.make_node('Concat', ['r1', 'up'], ['fused'], axis=1, name='fuse'),
    helper.make_node('Conv', ['fused', 'w3', 'b3'], ['c3'], pads=[1, 1, 1, 1], name='smooth'),
    helper.make_node('BatchNormalization', ['c3', 'g', 'beta', 'mean', 'var'], ['bn'], name='bn'),
    helper.make_node('Relu', ['bn'], ['r3'], name='relu3'),
    helper.make_node('ConvTranspose', ['r3', 'wt1'], ['t1'], strides=[2, 2], name='deconv1'),
    helper.make_node('Relu', ['t1'], ['rt1'], name='relu4'),
    helper.make_node('ConvTranspose', ['rt1', 'wt2', 'bt2'], ['t2'], strides=[2, 2], name='deconv2'),
    helper.make_node('Sigmoid', ['t2'], ['y'], name='prob'),
], [tin('x', [1, 3, 16, 16])], [tout('y')],
    [init('w1', w(8, 3, 3, 3)), init('b1', w(8)), init('w2', w(8, 8, 3, 3)), init('b2', w(8)),
     init('scales', np.array([1, 1, 2, 2], np.float32)), init('w3', w(6, 16, 3, 3)), init('b3', w(6)),
     init('g', rng.uniform(0.5, 1.5, 6)), init('beta', w(6)), init('mean', w(6, scale=0.1)), init('var', rng.uniform(0.5, 2, 6)),
     init('wt1', w(6, 4, 2, 2)), init('wt2', w(4, 1, 2, 2)), init('bt2', w(1))], shape=[1, 3, 16, 16])

# A BatchNormalization after a MaxPool, with no Conv to fold into.
save('lone_bn', [
    helper.make_node('MaxPool', ['x'], ['p'], kernel_shape=[2, 2], strides=[2, 2], name='pool'),
    helper.make_node('BatchNormalization', ['p', 'g', 'b', 'm', 'v'], ['bn'], name='bn'),
    helper.make_node('Relu', ['bn'], ['y'], name='relu'),
], [tin('x', [1, 5, 8, 8])], [tout('y')],
    [init('g', rng.uniform(0.5, 2, 5)), init('b', w(5)), init('m', w(5, scale=0.2)), init('v', rng.uniform(0.5, 2, 5))],
    shape=[1, 5, 8, 8])

# Pad with zeros (opset 11: pads as an input) before a strided Conv, as
# TensorFlow exports write "SAME": into the Conv's own padding.
save('pad_conv', [
    helper.make_node('Pad', ['x', 'pads'], ['xp'], mode='constant', name='pad'),
    helper.make_node('Conv', ['xp', 'w'], ['c'], strides=[2, 2], name='conv'),
    helper.make_node('Relu', ['c'], ['y'], name='relu'),
], [tin('x', [1, 3, 11, 11])], [tout('y')], [init('pads', np.array([0, 0, 0, 1, 0, 0, 2, 1], np.int64)),
                                             init('w', w(4, 3, 3, 3))], opset=11, shape=[1, 3, 11, 11])

# A dynamic batch dimension, resolved from the input given.
save('dynamic_batch', [
    helper.make_node('Conv', ['x', 'w'], ['c'], pads=[0, 0, 1, 1], name='conv'),
    helper.make_node('Relu', ['c'], ['y'], name='relu'),
], [tin('x', ['N', 2, 6, 6])], [tout('y')], [init('w', w(3, 2, 2, 2))], shape=[1, 2, 6, 6])

# The model's own depth limits in metadata_props: 6 to 16 bits for the model,
# 8 to 16 for the layer of node conv2.
limits_nodes = [
    helper.make_node('Conv', ['x', 'w1'], ['c1'], pads=[1, 1, 1, 1], name='conv1'),
    helper.make_node('Relu', ['c1'], ['r1'], name='relu1'),
    helper.make_node('Conv', ['r1', 'w2'], ['y'], name='conv2'),
]
limits_inits = [init('w1', w(4, 2, 3, 3)), init('w2', w(3, 4, 1, 1))]
save('depth_limits', limits_nodes, [tin('x', [1, 2, 6, 6])], [tout('y')], limits_inits, shape=[1, 2, 6, 6],
     meta={'bwq.activation_bits': '6:16', 'bwq.layer_bits.conv2': '8:16'})
save('bad_limits_value', limits_nodes, [tin('x', [1, 2, 6, 6])], [tout('y')], limits_inits,
     meta={'bwq.activation_bits': '5:16'})
save('bad_limits_node', limits_nodes, [tin('x', [1, 2, 6, 6])], [tout('y')], limits_inits,
     meta={'bwq.layer_bits.conv9': '8:16'})

# Ranges for every tensor: the model runs with them and no calibration.
save('ranges_given', limits_nodes, [tin('x', [1, 2, 6, 6])], [tout('y')], limits_inits, shape=[1, 2, 6, 6],
     meta={'bwq.ranges.x': '4:-1,1;6:-1,1;8:-1,1;16:-1,1', 'bwq.ranges.conv1': '16:0,4;4:0,2;6:0,3;8:0,4',
           'bwq.ranges.conv2': '4:-3,3;6:-4,4;8:-5,5;16:-6,6', 'bwq.layer_bits.x': '8:16'})

# Ranges in the metadata, malformed: inverted, not finite, a depth missing,
# a tensor that does not exist.
good_ranges = '4:-1,1;6:-1,1;8:-1,1;16:-1,1'
for bad, (key, value) in {
        'bad_ranges_inverted': ('bwq.ranges.conv1', '4:1,-1;6:-1,1;8:-1,1;16:-1,1'),
        'bad_ranges_nan': ('bwq.ranges.conv1', '4:-1,nan;6:-1,1;8:-1,1;16:-1,1'),
        'bad_ranges_missing': ('bwq.ranges.conv1', '4:-1,1;6:-1,1;8:-1,1'),
        'bad_ranges_name': ('bwq.ranges.conv7', good_ranges),
        'bad_bias_count': ('bwq.bias.conv1', '4:1,2;6:1,2;8:1,2;16:1,2'),
        'bad_bias_value': ('bwq.bias.conv1', '4:1,2,3,inf;6:0,0,0,0;8:0,0,0,0;16:0,0,0,0'),
        'bad_bias_input': ('bwq.bias.x', '4:0,0;6:0,0;8:0,0;16:0,0'),
}.items():
    save(bad, limits_nodes, [tin('x', [1, 2, 6, 6])], [tout('y')], limits_inits, meta={key: value})

# A chain of 1x1 convolutions whose second output is fragile: its channel 0
# is 16 times the others (and the next layer scales it back), so at a low
# depth one range must cover both and the small channels vanish.  Its
# calibrated minimum depth must be above its neighbours'.
frng = np.random.default_rng(7)  # its own, so that models added above do not change it
fw = [(frng.standard_normal((8, 8, 1, 1)) * 0.5).astype(np.float32) for _ in range(4)]
fw[1][0] *= 16
fw[2][:, 0] /= 16
save('fragile_chain', [
    helper.make_node('Conv', ['x', 'w1'], ['c1'], name='conv1'),
    helper.make_node('Relu', ['c1'], ['r1'], name='relu1'),
    helper.make_node('Conv', ['r1', 'w2'], ['c2'], name='fragile'),
    helper.make_node('Conv', ['c2', 'w3'], ['c3'], name='conv3'),
    helper.make_node('Relu', ['c3'], ['r3'], name='relu3'),
    helper.make_node('Conv', ['r3', 'w4'], ['y'], name='conv4'),
], [tin('x', [1, 8, 8, 8])], [tout('y')],
    [init('w1', fw[0]), init('w2', fw[1]), init('w3', fw[2]), init('w4', fw[3])], shape=[1, 8, 8, 8], samples=64)

# ---- malformed models: each must be refused with a named error ----
good = onnx.load(os.path.join(out, 'conv_bn_relu.onnx'))
raw = good.SerializeToString()
with open(os.path.join(out, 'bad_truncated.onnx'), 'wb') as f:
    f.write(raw[:len(raw) // 2])
with open(os.path.join(out, 'bad_not_protobuf.onnx'), 'wb') as f:
    f.write(b'this is not an ONNX model, just text\n' * 4)


def variant(name, edit):
    m = onnx.load(os.path.join(out, 'conv_bn_relu.onnx'))
    edit(m)
    onnx.save(m, os.path.join(out, name + '.onnx'))


variant('bad_opset', lambda m: m.opset_import[0].__setattr__('version', 99))


def unknown_domain(m):
    m.graph.node[2].domain = 'com.example'
    m.opset_import.add().domain = 'com.example'


variant('bad_domain', unknown_domain)
variant('bad_unsupported_op', lambda m: m.graph.node[2].__setattr__('op_type', 'Softplus'))


def dynamic(m):
    d = m.graph.input[0].type.tensor_type.shape.dim[2]
    d.Clear()
    d.dim_param = 'H'


variant('bad_dynamic', dynamic)


def shape_mismatch(m):
    m.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 5  # 5 channels into a 3-channel conv


variant('bad_shapes', shape_mismatch)


def wrong_size(m):
    t = m.graph.initializer[1]  # b: 8 floats
    t.raw_data = t.raw_data[:12]


variant('bad_initializer_size', wrong_size)


def wrong_type(m):
    t = m.graph.initializer[1]
    t.data_type = TensorProto.COMPLEX64


variant('bad_initializer_type', wrong_type)


def int_weights(m):
    t = m.graph.initializer[0]  # the conv's weights, as 32-bit integers of the same byte count
    t.data_type = TensorProto.INT32


variant('bad_weight_type', int_weights)
# A unary op given more inputs than it takes (the weights, of another rank).
variant('bad_input_count', lambda m: m.graph.node[2].input.extend(['w']))


def external(m):
    t = m.graph.initializer[0]
    t.ClearField('raw_data')
    t.data_location = TensorProto.EXTERNAL
    e = t.external_data.add()
    e.key, e.value = 'location', 'missing_weights.bin'


variant('bad_external_missing', external)


def cycle(m):
    # relu feeds the conv that feeds it
    m.graph.node[0].input[0] = 'y'


variant('bad_cycle', cycle)


def absurd(m):
    m.graph.input[0].type.tensor_type.shape.dim[2].dim_value = 1 << 40


variant('bad_absurd_dims', absurd)
