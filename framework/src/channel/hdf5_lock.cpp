#include "w2p/hdf5_lock.hpp"

namespace w2p {

std::recursive_mutex& hdf5_mutex() {
  // Function-local static: initialised on first use, so it exists before any static HDF5 user.
  static std::recursive_mutex mutex;
  return mutex;
}

}  // namespace w2p
