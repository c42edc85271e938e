#include "w2p/version.hpp"

namespace w2p {
const char* framework_version() { return W2P_VERSION_STRING; }
const char* framework_build_id() { return W2P_BUILD_ID; }
}  // namespace w2p
