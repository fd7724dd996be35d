// Static shapes of every value, and constants folded: a node whose inputs
// are all constant is evaluated here (Shape/Gather/Slice/Cast/Concat/
// Unsqueeze/Reshape chains, ConstantOfShape, arithmetic on constants), so
// what is left for the device is the network itself.  Pads of auto_pad
// are made explicit on the way.
#include "fold.h"

namespace onnxfe {

std::optional<Error> Folder::node(Node &n)
{
        if (n.out.empty() || n.out[0] < 0)
                return err(-EINVAL, what_ + ": no output");
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
