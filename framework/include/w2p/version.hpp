// Versions and the plugin ABI rule.
//
// W2P_PLUGIN_ABI is the exact-match ABI number between libw2p_framework and plugins: bump it
// with ANY change to a header under framework/include/w2p/. A test hashes those headers and
// fails with "bump W2P_PLUGIN_ABI" when the hash below is stale. The build id adds what a
// C++ interface also depends on (compiler, standard, libstdc++ dual ABI); plugins must match
// both exactly (DuckDB's rule for C++ extensions), since they share C++ types with the host.
#pragma once

#include <cstdint>

#define W2P_VERSION_STRING "0.1.0"
#define W2P_PLUGIN_ABI 3u
// FNV-1a of the SDK headers (all but this one); framework/tests/core/abi_hash_test checks it.
#define W2P_SDK_HEADERS_HASH "2ebc1d4db6dfe6f4"

#define W2P_STRINGIFY_IMPL(x) #x
#define W2P_STRINGIFY(x) W2P_STRINGIFY_IMPL(x)
#if defined(__clang__)
#define W2P_COMPILER_ID "clang-" W2P_STRINGIFY(__clang_major__)
#elif defined(__GNUC__)
#define W2P_COMPILER_ID "gcc-" W2P_STRINGIFY(__GNUC__)
#else
#define W2P_COMPILER_ID "unknown"
#endif
#if defined(_GLIBCXX_USE_CXX11_ABI)
#define W2P_CXX11_ABI W2P_STRINGIFY(_GLIBCXX_USE_CXX11_ABI)
#else
#define W2P_CXX11_ABI "n/a"
#endif
/// Compiler family + major version, C++ standard and libstdc++ dual ABI, as compiled here.
#define W2P_BUILD_ID W2P_COMPILER_ID ";cxx" W2P_STRINGIFY(__cplusplus) ";cxx11abi=" W2P_CXX11_ABI

namespace w2p {
/// Version of the framework library the process runs (may differ from W2P_VERSION_STRING of a
/// plugin's headers; the loader compares ABI and build id, not this).
const char* framework_version();
/// W2P_BUILD_ID as compiled into the framework library.
const char* framework_build_id();
}  // namespace w2p
