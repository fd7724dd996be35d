// Static shapes of every value, and constants folded: a node whose inputs
// are all constant is evaluated here (Shape/Gather/Slice/Cast/Concat/
// Unsqueeze/Reshape chains, ConstantOfShape, arithmetic on constants), so
// what is left for the device is the network itself.  Pads of auto_pad
// are made explicit on the way.
#include "fold.h"

namespace onnxfe {

// How many leading inputs of an op are float data that the rewrites and
// the lowering read as such (weights, bias, batch-norm statistics); an
// integer tensor there is refused here, by name, rather than misread.
static size_t float_inputs(const std::string &op)
{
        if (op == "Conv" || op == "ConvTranspose" || op == "Gemm")
                return 3;
        if (op == "MatMul")
                return 2;
        if (op == "BatchNormalization")
                return 5;
        return 0;
}

std::optional<Error> Folder::node(Node &n)
{
        if (n.out.empty() || n.out[0] < 0)
                return err(-EINVAL, what_ + ": no output");
        for (size_t i = 0; i < std::min(float_inputs(n.op), n.in.size()); i++)
                if (n.in[i] >= 0 && g_.values[size_t(n.in[i])].type != DType::Float)
                        return err(-EINVAL, what_ + ": input " + std::to_string(i) + " '" + g_.values[size_t(n.in[i])].name +
                                                    "' is not a float tensor");
        bool handled = false;
        std::optional<Error> e = data_op(n, &handled);
        if (!handled)
                e = math_op(n, &handled);
        if (!handled)
                e = nn_op(n, &handled);
        if (!handled)
                return err(-ENOTSUP, what_ + ": op " + n.op + " is not supported");
        return e;
}

std::optional<Error> infer_and_fold(Graph *g)
{
        return Folder(g).run();
}

std::optional<Error> evaluate(Graph *g, Node *n)
{
        Folder f(g);
        return f.one(*n);
}

} // namespace onnxfe
