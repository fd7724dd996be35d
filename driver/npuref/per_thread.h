// One object per thread for npuref's scratch, without the cost of a
// thread_local object's initialization check on every access.
#pragma once

namespace npuref {

// One object of T per thread, made on the thread's first use and freed
// when it ends.  A thread_local object with a destructor makes every access
// from a shared library call its initialization check and look the
// variable up twice, and a layer's work items make a few such accesses
// each; the thread_local pointer here is one load (initial-exec: the
// library's TLS block, now 168 bytes instead of 1467, comes from the
// static TLS that the loader keeps spare for a library loaded with
// dlopen; exports_test.sh loads it so).  1x1 56x56 64->64 on one thread
// took 42.0 -> 41.3 us, 1x1 28x28 32->192 on two 15.5 -> 15.0, and
// BlazeFace's layers 342 -> 330 us on one.
template <typename T> struct PerThread {
        static inline thread_local T *ptr __attribute__((tls_model("initial-exec"))) = nullptr;
        struct Owner {
                T *p = nullptr;
                ~Owner()
                {
                        ptr = nullptr;
                        delete p;
                }
        };
        static __attribute__((noinline)) T &make()
        {
                static thread_local Owner owner;
                owner.p = new T();
                ptr = owner.p;
                return *owner.p;
        }
        static T &get()
        {
                T *p = ptr;
                return __builtin_expect(p != nullptr, 1) ? *p : make();
        }
};

} // namespace npuref
