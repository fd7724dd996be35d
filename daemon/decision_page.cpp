#include "decision_page.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "policy.h"

namespace bwq {

int DecisionPage::create()
{
        fd_.reset(memfd_create("bwq-decision", MFD_CLOEXEC | MFD_ALLOW_SEALING));
        if (!fd_)
                return -errno;
        if (ftruncate(fd_.get(), BWQ_PAGE_SIZE) < 0)
                return -errno;
        // Our writable mapping exists before the seal, which only stops new ones.
        mapping_ = Mapping::map(BWQ_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(), 0);
        if (!mapping_)
                return -errno;
        page_ = mapping_.as<bwq_page>();
        page_->magic = BWQ_PAGE_MAGIC;
        page_->version = BWQ_PAGE_VERSION;
        if (fcntl(fd_.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL) < 0)
                return -errno;
        return 0;
}

void DecisionPage::publish(const Decision &d, const std::string &source, uint32_t table_generation, uint32_t flags,
                           uint64_t now_ns, uint64_t interval_ns)
{
        bwq_page *p = page_;
        bwq_page_write_begin(p);
        __atomic_store_n(&p->flags, flags | (d.stale ? BWQ_PAGE_STALE : 0u), __ATOMIC_RELAXED);
        __atomic_store_n(&p->timestamp_ns, d.timestamp_usec * 1000, __ATOMIC_RELAXED);
        __atomic_store_n(&p->max_bps, d.max_bps, __ATOMIC_RELAXED);
        __atomic_store_n(&p->used_bps, d.used_bps, __ATOMIC_RELAXED);
        __atomic_store_n(&p->available_bps, d.available_bps, __ATOMIC_RELAXED);
        __atomic_store_n(&p->act_bits, d.bits, __ATOMIC_RELAXED);
        __atomic_store_n(&p->section, d.section, __ATOMIC_RELAXED);
        for (size_t i = 0; i < sizeof p->source; i++)
                __atomic_store_n(&p->source[i], i < source.size() && i + 1 < sizeof p->source ? source[i] : '\0',
                                 __ATOMIC_RELAXED);
        __atomic_store_n(&p->table_generation, table_generation, __ATOMIC_RELAXED);
        __atomic_store_n(&p->published_ns, now_ns, __ATOMIC_RELAXED);
        __atomic_store_n(&p->interval_ns, interval_ns, __ATOMIC_RELAXED);
        bwq_page_write_end(p);
}

void DecisionPage::set_flags(uint32_t flags)
{
        bwq_page_write_begin(page_);
        __atomic_store_n(&page_->flags, flags, __ATOMIC_RELAXED);
        bwq_page_write_end(page_);
}

} // namespace bwq
