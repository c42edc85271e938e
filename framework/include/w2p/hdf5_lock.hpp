// The one lock around the HDF5 C library.
//
// Debian ships HDF5's serial build, which is not thread-safe: any two HDF5 calls (including
// H5*close and the error-stack functions) must never overlap anywhere in the process, so the
// framework (channel stores) and every plugin that calls HDF5 itself hold this mutex for the
// duration of their calls. It is recursive so that helpers which lock may call each other.
#pragma once

#include <mutex>

namespace w2p {

std::recursive_mutex& hdf5_mutex();

}  // namespace w2p
