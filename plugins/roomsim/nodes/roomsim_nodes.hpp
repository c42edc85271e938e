// Node types of the `roomsim` plugin (registered in roomsim_plugin.cpp) and helpers they share.
#pragma once

#include <w2p/node.hpp>

#include <array>
#include <string>

#include "roomsim/kernels/shoebox.hpp"

namespace w2p::roomsim {

NodeType wav2pos_geometry_node_type();  ///< roomsim.wav2pos_geometry
NodeType shoebox_node_type();           ///< roomsim.shoebox
NodeType position_stats_node_type();    ///< roomsim.position_stats

/// A 3-vector option (validated to 3 elements by its OptionSpec).
inline Vec3 vec3_option(const Options& o, const char* key) {
  const std::vector<double> v = o.get_float_list(key);
  W2P_ASSERT(v.size() == 3, "3-element option");
  return {v[0], v[1], v[2]};
}

/// "[5, 5, 2]"
inline std::string vec3_text(const Vec3& v) {
  auto num = [](double x) {
    std::string s = std::to_string(x);
    while (s.size() > 1 && s.back() == '0') s.pop_back();
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
  };
  return "[" + num(v[0]) + ", " + num(v[1]) + ", " + num(v[2]) + "]";
}

}  // namespace w2p::roomsim
