// Fixtures of bwqd's unit tests: scratch directories and files, and a
// clock the test moves.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

#include "daemon/source.h"
#include "test_util.h"

namespace test {

inline std::string tmpdir()
{
        char t[] = "/tmp/bwq-test-XXXXXX";
        assert_non_null(mkdtemp(t));
        return t;
}

inline void write_file(const std::string &path, const std::string &text)
{
        std::string dir = path.substr(0, path.rfind('/'));
        std::string cmd = "mkdir -p '" + dir + "'";
        assert_int_equal(system(cmd.c_str()), 0);
        std::ofstream f(path);
        f << text;
        assert_true(bool(f));
}

inline std::string read_file(const std::string &path)
{
        std::ifstream f(path);
        std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        return s;
}

inline void rm_rf(const std::string &dir)
{
        std::string cmd = "rm -rf '" + dir + "'";
        assert_int_equal(system(cmd.c_str()), 0);
}

// A clock the test moves.
struct FakeClock {
        uint64_t ns = 1000000000ull;
        bwq::Clock fn()
        {
                return [this] { return ns; };
        }
};

} // namespace test
