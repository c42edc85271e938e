// A shared library that exports something, but no w2p plugin descriptor.
#include <boost/config.hpp>

extern "C" BOOST_SYMBOL_EXPORT int w2p_not_a_plugin() { return 42; }
