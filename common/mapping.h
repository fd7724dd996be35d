// An owned mmap(2) region, unmapped when it goes.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <utility>

namespace bwq {

class Mapping {
public:
        Mapping() = default;
        Mapping(void *addr, size_t length) : addr_(addr == MAP_FAILED ? nullptr : addr), length_(addr_ ? length : 0) {}
        ~Mapping() { reset(); }
        Mapping(Mapping &&o) noexcept : addr_(std::exchange(o.addr_, nullptr)), length_(std::exchange(o.length_, 0)) {}
        Mapping &operator=(Mapping &&o) noexcept
        {
                if (this != &o) {
                        reset();
                        addr_ = std::exchange(o.addr_, nullptr);
                        length_ = std::exchange(o.length_, 0);
                }
                return *this;
        }
        Mapping(const Mapping &) = delete;
        Mapping &operator=(const Mapping &) = delete;

        // mmap(2) with its arguments; an empty Mapping on failure (errno set).
        static Mapping map(size_t length, int prot, int flags, int fd, off_t offset)
        {
                return Mapping(::mmap(nullptr, length, prot, flags, fd, offset), length);
        }

        void *get() const { return addr_; }
        template <class T> T *as() const { return static_cast<T *>(addr_); }
        size_t size() const { return length_; }
        explicit operator bool() const { return addr_ != nullptr; }
        void reset()
        {
                if (addr_)
                        (void)::munmap(addr_, length_);
                addr_ = nullptr;
                length_ = 0;
        }

private:
        void *addr_ = nullptr;
        size_t length_ = 0;
};

} // namespace bwq
