// The plugin ABI rule: any change to an SDK header must bump W2P_PLUGIN_ABI, so that plugins
// built against the old headers are rejected at load time instead of crashing. This test
// notices a header change that forgot the bump.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "graph/pipeline_graph.hpp"
#include "w2p/version.hpp"

namespace fs = std::filesystem;

TEST(SdkHeaders, HashMatchesTheOneRecordedWithThePluginAbi) {
  std::vector<fs::path> headers;
  for (const auto& e : fs::directory_iterator(W2P_SDK_INCLUDE_DIR)) {
    // version.hpp records the hash and the ABI number, so it is not part of the hash.
    if (e.path().extension() == ".hpp" && e.path().filename() != "version.hpp") {
      headers.push_back(e.path());
    }
  }
  std::sort(headers.begin(), headers.end());
  ASSERT_GE(headers.size(), 8u);
  std::string all;
  for (const auto& h : headers) {
    std::ifstream in(h);
    std::stringstream text;
    text << in.rdbuf();
    all += h.filename().string() + "\n" + text.str();
  }
  const std::string hash = w2p::stable_hash(all);
  EXPECT_EQ(hash, W2P_SDK_HEADERS_HASH)
      << "the SDK headers in framework/include/w2p changed: bump W2P_PLUGIN_ABI (now "
      << W2P_PLUGIN_ABI << ") and set W2P_SDK_HEADERS_HASH to \"" << hash
      << "\" in framework/include/w2p/version.hpp";
}
